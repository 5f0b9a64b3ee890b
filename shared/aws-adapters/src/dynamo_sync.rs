//! [`ports::SyncStore`] on the DynamoDB table: groups, runs, leases and checkpoints in
//! the directory's partition (key design in [`crate::dynamo`]).

use async_trait::async_trait;
use ports::SyncStore;

use crate::dynamo::DynamoStore;

#[async_trait]
impl SyncStore for DynamoStore {}
