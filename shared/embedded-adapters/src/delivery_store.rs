//! [`ports::DeliveryStore`] on the embedded store: the delivery log, target resource
//! ids and circuit breakers kept in the same state (and file) as everything else.

use async_trait::async_trait;
use ports::DeliveryStore;
use serde::{Deserialize, Serialize};

use crate::store::FileStore;

/// The dispatcher's items.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct DeliveryState {}

#[async_trait]
impl DeliveryStore for FileStore {}
