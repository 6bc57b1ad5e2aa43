//! The order, parsed from JSON into types that can only hold valid values.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use service_kit::{
    ApiError,
    data::db::{FromRow, Row, invalid_column},
    http::{
        extract::MergePatch,
        validate::{self, Fields},
    },
};

// ANCHOR: order
/// An order as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: i64,
    pub client_id: i64,
    pub item: String,
    pub quantity: i32,
    pub price: Price,
    pub status: OrderStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped by every update; sent as the `ETag`.
    pub version: i64,
}
// ANCHOR_END: order

// ANCHOR: from_row
impl FromRow for Order {
    fn from_row(row: &Row<'_>) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.get("id")?,
            client_id: row.get("client_id")?,
            item: row.get("item")?,
            quantity: row.get("quantity")?,
            price: Price::try_from(row.get::<i64>("price_cents")?)
                .map_err(|err| invalid_column("price_cents", err))?,
            status: OrderStatus::try_from(row.get::<String>("status")?)
                .map_err(|err| invalid_column("status", err))?,
            created_at: row.time("created_at")?,
            updated_at: row.time("updated_at")?,
            version: row.get("version")?,
        })
    }
}
// ANCHOR_END: from_row

impl Order {
    // ANCHOR: writable_fields
    /// The writable fields as JSON, for applying a merge patch.
    pub fn writable_fields(&self) -> serde_json::Map<String, Value> {
        let mut fields = serde_json::Map::new();
        fields.insert("client_id".into(), self.client_id.into());
        fields.insert("item".into(), self.item.clone().into());
        fields.insert("quantity".into(), self.quantity.into());
        fields.insert("price".into(), self.price.to_string().into());
        fields.insert("status".into(), self.status.as_str().into());
        fields
    }
    // ANCHOR_END: writable_fields
}

/// The client's current details, as client_service returns them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClientSummary {
    pub id: i64,
    pub name: String,
    pub card_number: String,
    pub card_issued_on: NaiveDate,
}

// ANCHOR: order_view
/// An order as the API returns it: with its client's current details, or
/// `null` when client_service cannot answer (or no longer has the client).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 1, "client_id": 1, "item": "Analytical Engine", "quantity": 1, "price": "12.50",
    "status": "new", "created_at": "2026-11-30T12:00:00Z", "updated_at": "2026-11-30T12:00:00Z",
    "client": {"id": 1, "name": "Ada Lovelace", "card_number": "AL-1815", "card_issued_on": "2020-02-29"}}))]
pub struct OrderView {
    pub id: i64,
    pub client_id: i64,
    pub item: String,
    pub quantity: i32,
    /// Two decimals, e.g. "12.50".
    #[schema(value_type = String, pattern = r"^[0-9]{1,10}\.[0-9]{2}$")]
    pub price: Price,
    pub status: OrderStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The client's current details; null when client_service cannot answer.
    pub client: Option<ClientSummary>,
}
// ANCHOR_END: order_view

impl OrderView {
    // ANCHOR: order_view_new
    pub fn new(order: Order, client: Option<ClientSummary>) -> Self {
        Self {
            id: order.id,
            client_id: order.client_id,
            item: order.item,
            quantity: order.quantity,
            price: order.price,
            status: order.status,
            created_at: order.created_at,
            updated_at: order.updated_at,
            client,
        }
    }
    // ANCHOR_END: order_view_new
}

// ANCHOR: new_order
/// The writable fields of an order: the body of POST and PUT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub client_id: i64,
    pub item: String,
    pub quantity: i32,
    pub price: Price,
    pub status: OrderStatus,
}

const FIELDS: &[&str] = &["client_id", "item", "quantity", "price", "status"];
const READ_ONLY: &[&str] = &["id", "created_at", "updated_at", "client"];
// ANCHOR_END: new_order

pub const MAX_ITEM_CHARS: usize = 200;
pub const MAX_QUANTITY: i64 = 1_000_000;

impl NewOrder {
    // ANCHOR: stored
    /// The order as it was just stored under `id`, at `now`: at version 1
    /// (the column's default), created and updated at `now`.
    pub fn stored(&self, id: i64, now: DateTime<Utc>) -> Order {
        Order {
            id,
            client_id: self.client_id,
            item: self.item.clone(),
            quantity: self.quantity,
            price: self.price,
            status: self.status,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }
    // ANCHOR_END: stored

    /// POST: `quantity` defaults to 1 and `status` to `new`.
    pub fn parse_create(body: &Value) -> Result<Self, ApiError> {
        Self::parse(body, false)
    }

    /// PUT replaces the whole order: every field is required.
    pub fn parse_replace(body: &Value) -> Result<Self, ApiError> {
        Self::parse(body, true)
    }

    /// PATCH: `current`'s fields with the merge patch applied, parsed as
    /// for PUT. A member that is not a field is a 422 even when it is
    /// `null` (which would remove nothing).
    /// A merge patch's members on their own, before the patch is applied
    /// (and before the request's preconditions: see the guide's "Order of
    /// the checks"): each must be a field, set to a valid value (no field
    /// can be removed).
    pub fn check_patch(patch: &MergePatch) -> Result<(), ApiError> {
        let members = Value::Object(patch.members().clone());
        let mut fields = Fields::of(&members, FIELDS, READ_ONLY)?;
        let client_id = fields.present("client_id", parse_client_id).map(drop);
        let item = fields.present("item", parse_item).map(drop);
        let quantity = fields.present("quantity", parse_quantity).map(drop);
        let price = fields.present("price", Price::parse).map(drop);
        let status = fields.present("status", OrderStatus::parse).map(drop);
        fields.finish(|| client_id.and(item).and(quantity).and(price).and(status))
    }

    pub fn parse_patch(current: &Order, patch: &MergePatch) -> Result<Self, ApiError> {
        validate::only_fields(patch.members(), FIELDS, READ_ONLY)?;
        let mut fields = current.writable_fields();
        patch.apply_to(&mut fields);
        Self::parse_replace(&Value::Object(fields))
    }

    // ANCHOR: parse
    fn parse(body: &Value, all_required: bool) -> Result<Self, ApiError> {
        let mut fields = Fields::of(body, FIELDS, READ_ONLY)?;
        let client_id = fields.required("client_id", parse_client_id);
        let item = fields.required("item", parse_item);
        let (quantity, status) = if all_required {
            (
                fields.required("quantity", parse_quantity),
                fields.required("status", OrderStatus::parse),
            )
        } else {
            (
                fields.optional("quantity", 1, parse_quantity),
                fields.optional("status", OrderStatus::New, OrderStatus::parse),
            )
        };
        let price = fields.required("price", Price::parse);
        fields.finish(|| {
            Some(Self {
                client_id: client_id?,
                item: item?,
                quantity: quantity?,
                price: price?,
                status: status?,
            })
        })
    }
    // ANCHOR_END: parse
}

fn parse_client_id(value: &Value) -> Result<i64, String> {
    validate::integer_in(value, 1, i64::MAX)
}

fn parse_item(value: &Value) -> Result<String, String> {
    validate::text(value, MAX_ITEM_CHARS)
}

fn parse_quantity(value: &Value) -> Result<i32, String> {
    validate::integer_in(value, 1, MAX_QUANTITY)
        .and_then(|n| i32::try_from(n).map_err(|e| e.to_string()))
}

/// A non-negative amount with at most two fractional digits, held as a
/// whole number of cents: never a float, in memory or in storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Price {
    cents: i64,
}

impl Price {
    /// The largest accepted price, 1 000 000 000.00.
    pub const MAX_CENTS: i64 = 100_000_000_000;

    pub fn from_cents(cents: i64) -> Result<Self, String> {
        if (0..=Self::MAX_CENTS).contains(&cents) {
            Ok(Self { cents })
        } else {
            Err(format!(
                "must be from 0.00 to {}",
                Self {
                    cents: Self::MAX_CENTS
                }
            ))
        }
    }

    pub fn cents(self) -> i64 {
        self.cents
    }

    /// From a JSON string (`"12.50"`) or number (`12.5`).
    pub fn parse(value: &Value) -> Result<Self, String> {
        match value {
            Value::String(text) => Self::parse_decimal(text),
            // Without serde_json's arbitrary precision a number arrives as an
            // f64; its shortest round-trip text is what the client wrote for
            // every price within range (at most 15 significant digits).
            Value::Number(number) => Self::parse_decimal(&number.to_string()),
            other => Err(format!(
                "must be a decimal number or a string like \"12.50\", not {}",
                validate::kind(other)
            )),
        }
    }

    fn parse_decimal(text: &str) -> Result<Self, String> {
        let invalid = || {
            format!("`{text}` is not a non-negative amount with at most 2 decimals, like \"12.50\"")
        };
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || whole.len() > 12 || !digits(whole) || !digits(fraction) {
            return Err(invalid());
        }
        if text.contains('.') && fraction.is_empty() || fraction.len() > 2 {
            return Err(invalid());
        }
        let whole: i64 = whole.parse().map_err(|_| invalid())?;
        let fraction: i64 = format!("{fraction:0<2}").parse().map_err(|_| invalid())?;
        let cents = whole
            .checked_mul(100)
            .and_then(|c| c.checked_add(fraction))
            .ok_or_else(invalid)?;
        Self::from_cents(cents)
    }
}

impl TryFrom<i64> for Price {
    type Error = String;
    fn try_from(cents: i64) -> Result<Self, String> {
        Self::from_cents(cents)
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.cents / 100, self.cents % 100)
    }
}

/// Prices are returned as strings with two decimals: `"12.50"`.
impl Serialize for Price {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    New,
    Paid,
    Shipped,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [Self; 5] = [
        Self::New,
        Self::Paid,
        Self::Shipped,
        Self::Delivered,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Paid => "paid",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(value: &Value) -> Result<Self, String> {
        let text = validate::string(value)?;
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| {
                format!("must be one of new, paid, shipped, delivered, cancelled (got `{text}`)")
            })
    }
}

impl TryFrom<String> for OrderStatus {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&Value::String(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn price(v: Value) -> Result<String, String> {
        Price::parse(&v).map(|p| p.to_string())
    }

    #[test]
    fn prices_are_exact_with_two_decimals() {
        assert_eq!(price(json!("12.5")).unwrap(), "12.50");
        assert_eq!(price(json!("12.50")).unwrap(), "12.50");
        assert_eq!(price(json!("0")).unwrap(), "0.00");
        assert_eq!(price(json!(12.5)).unwrap(), "12.50");
        assert_eq!(price(json!(0.1)).unwrap(), "0.10");
        assert_eq!(price(json!(19.99)).unwrap(), "19.99");
        assert_eq!(price(json!(7)).unwrap(), "7.00");
        assert_eq!(price(json!("1000000000.00")).unwrap(), "1000000000.00");
        for bad in [
            json!("12.345"),
            json!(12.345),
            json!("-1"),
            json!(-1),
            json!("1e3"),
            json!("12."),
            json!(".5"),
            json!(" 12"),
            json!("12,50"),
            json!("abc"),
            json!(""),
            json!("1000000000.01"),
            json!(true),
            json!(null),
        ] {
            assert!(price(bad.clone()).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn defaults_apply_on_create_but_replace_needs_every_field() {
        let body = json!({"client_id": 1, "item": "Tea", "price": "3.20"});
        let order = NewOrder::parse_create(&body).unwrap();
        assert_eq!((order.quantity, order.status), (1, OrderStatus::New));
        let Err(ApiError::Validation(errors)) = NewOrder::parse_replace(&body) else {
            panic!("expected 422");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["quantity", "status"]);
    }

    // ANCHOR: every_field_is_checked
    #[test]
    fn every_field_is_checked() {
        let body = json!({"client_id": 0, "item": " ", "quantity": 1_000_001, "price": -1, "status": "lost"});
        let Err(ApiError::Validation(errors)) = NewOrder::parse_create(&body) else {
            panic!("expected 422");
        };
        assert_eq!(errors.len(), 5);
        assert!(OrderStatus::parse(&json!("Paid")).is_err());
        assert_eq!(
            OrderStatus::parse(&json!("paid")).unwrap(),
            OrderStatus::Paid
        );
    }
    // ANCHOR_END: every_field_is_checked
}
