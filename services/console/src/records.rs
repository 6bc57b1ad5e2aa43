//! The API's records as the console reads them: a client, an order (with
//! its client's current details), their versions from the `ETag`.

use serde::Deserialize;

use crate::api::Versioned;

/// A client as the API returns it.
#[derive(Clone, Debug, Deserialize)]
pub struct Client {
    pub id: i64,
    pub name: String,
    pub card_number: String,
    pub card_issued_on: String,
    #[serde(default)]
    pub version: i64,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
}

impl Versioned for Client {
    fn set_version(&mut self, version: i64) {
        self.version = version;
    }
}

/// An order as the API returns it, with its client's current details
/// (`None` when client_service did not answer).
#[derive(Clone, Debug, Deserialize)]
pub struct Order {
    pub id: i64,
    pub client_id: i64,
    pub item: String,
    pub quantity: i64,
    pub price: String,
    pub status: String,
    #[serde(default)]
    pub version: i64,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    #[serde(default)]
    pub client: Option<ClientSummary>,
}

impl Versioned for Order {
    fn set_version(&mut self, version: i64) {
        self.version = version;
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct ClientSummary {
    pub name: String,
    pub card_number: String,
}
