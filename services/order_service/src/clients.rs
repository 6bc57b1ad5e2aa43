//! The calls order_service makes to client_service: does a client exist, and
//! what are its current details.

use std::collections::HashMap;

use kit_config::DependencyConfig;
use kit_http::pagination::Page;
use kit_upstream::{BuildError, Upstream, UpstreamError, token::ServiceToken};

use crate::domain::ClientSummary;

/// A typed client for client_service, built once and cloned into handlers.
#[derive(Clone, Debug)]
pub struct ClientService {
    upstream: Upstream,
}

impl ClientService {
    /// The scope of this service's own token for these calls.
    pub const SCOPE: &'static str = "clients:read";

    /// Every call carries `token`: this service's own, never a caller's.
    pub fn new(config: &DependencyConfig, token: ServiceToken) -> Result<Self, BuildError> {
        Ok(Self {
            upstream: Upstream::new("client_service", config)?.with_token(token),
        })
    }

    // ANCHOR: get
    /// The client, or `None` when client_service has no such client.
    pub async fn get(&self, id: i64) -> Result<Option<ClientSummary>, UpstreamError> {
        self.upstream.get_json(&format!("/client/{id}")).await
    }
    // ANCHOR_END: get

    /// The clients among `ids` that exist, in one batched call.
    pub async fn get_many(
        &self,
        ids: &[i64],
    ) -> Result<HashMap<i64, ClientSummary>, UpstreamError> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut found = HashMap::with_capacity(ids.len());
        // A list of orders is at most Page::MAX_LIMIT long, and so is a batch.
        for chunk in ids.chunks(Page::MAX_LIMIT as usize) {
            let list = chunk
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let path = format!("/client/?ids={list}&limit={}", Page::MAX_LIMIT);
            let clients: Vec<ClientSummary> = self
                .upstream
                .get_json(&path)
                .await?
                .ok_or_else(|| self.upstream.unexpected_not_found())?;
            found.extend(clients.into_iter().map(|c| (c.id, c)));
        }
        Ok(found)
    }
}
