//! [`ports::DeliveryStore`] on the DynamoDB table: the delivery log, target resource
//! ids and circuit breakers in the directory's partition (key design in
//! [`crate::dynamo`]).

use async_trait::async_trait;
use ports::DeliveryStore;

use crate::dynamo::DynamoStore;

#[async_trait]
impl DeliveryStore for DynamoStore {}
