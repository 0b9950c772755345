//! [`HaystackClient`] for the WebSocket handles.

use hs_core::client::{ClientError, HaystackClient};

use crate::pool::{WsChannel, WsPool};
use crate::{Grid, ReconnectingWsClient, WsClient, WsClientError};

impl From<WsClientError> for ClientError {
    fn from(error: WsClientError) -> Self {
        let (kind, name) = (error.kind(), error.as_str());
        let failure = error.auth_failure().cloned();
        ClientError::new(error, kind, name, failure)
    }
}

/// The trait on a handle's `call_with_timeout`, `batch_with_timeout` and
/// `shutdown`, the default timeout applied.
macro_rules! haystack_client {
    ($($handle:ty),+) => {$(
        #[async_trait::async_trait]
        impl HaystackClient for $handle {
            async fn call(&self, op: &str, grid: Grid) -> Result<Grid, ClientError> {
                Ok(self.call_with_timeout(op, grid, None).await?)
            }

            async fn batch(&self, items: Vec<(String, Grid)>) -> Vec<Result<Grid, ClientError>> {
                let results = self.batch_with_timeout(items, None).await;
                results.into_iter().map(|result| Ok(result?)).collect()
            }

            async fn close(&self) -> Result<(), ClientError> {
                self.shutdown().await;
                Ok(())
            }
        }
    )+};
}

haystack_client!(WsClient, ReconnectingWsClient, WsPool, WsChannel);
