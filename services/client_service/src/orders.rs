//! The calls client_service makes to order_service when it deletes a client.

use kit_config::DependencyConfig;
use kit_upstream::{BuildError, Upstream, UpstreamError, token::ServiceToken};

/// A typed client for order_service, built once and cloned into handlers.
#[derive(Clone, Debug)]
pub struct OrderService {
    upstream: Upstream,
}

impl OrderService {
    /// The scope of this service's own token for these calls.
    pub const SCOPE: &'static str = "orders:read orders:write";

    /// Every call carries `token`: this service's own, never a caller's.
    pub fn new(config: &DependencyConfig, token: ServiceToken) -> Result<Self, BuildError> {
        Ok(Self {
            upstream: Upstream::new("order_service", config)?.with_token(token),
        })
    }

    /// Whether the client has at least one order.
    pub async fn has_orders(&self, client_id: i64) -> Result<bool, UpstreamError> {
        let path = format!("/order/?client_id={client_id}&limit=1");
        match self
            .upstream
            .get_json::<Vec<serde_json::Value>>(&path)
            .await?
        {
            Some(orders) => Ok(!orders.is_empty()),
            None => Err(self.upstream.unexpected_not_found()),
        }
    }

    /// Deletes every order of the client, and makes order_service refuse
    /// any new one for it.
    pub async fn delete_orders_of(&self, client_id: i64) -> Result<(), UpstreamError> {
        let path = format!("/order/?client_id={client_id}");
        match self.upstream.delete(&path).await? {
            true => Ok(()),
            false => Err(self.upstream.unexpected_not_found()),
        }
    }
}
