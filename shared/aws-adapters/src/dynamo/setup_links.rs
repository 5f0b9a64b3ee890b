//! [`ports::SetupLinkStore`] on DynamoDB: one item per link in the directory's
//! partition, written with the same version condition as directory records.
//!
//! | item       | `sk`               | attributes |
//! |------------|--------------------|------------|
//! | setup link | `SETUP#<link id>`  | `data` (JSON of the `SetupLink`: token and session *hashes* only), `version` (N) |

use async_trait::async_trait;
use domain::DirectoryId;
use ports::keys::{setup_link_sk, SETUP_PREFIX};
use ports::{SetupLink, SetupLinkStore, StoreError};

use super::codec::{decode, encode, n, s};
use super::keys::{dir_pk, key, DATA, VERSION};
use super::DynamoStore;

#[async_trait]
impl SetupLinkStore for DynamoStore {
    async fn get_setup_link(
        &self,
        directory: &DirectoryId,
        id: &str,
    ) -> Result<Option<SetupLink>, StoreError> {
        let item = self
            .get_item(key(dir_pk(directory), setup_link_sk(id)), "#data")
            .await?;
        item.map(|i| decode(&i, &format!("setup link {directory}/{id}")))
            .transpose()
    }

    async fn put_setup_link(
        &self,
        link: &SetupLink,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError> {
        let what = format!("setup link {}/{}", link.directory_id, link.id);
        let mut item = key(dir_pk(&link.directory_id), setup_link_sk(&link.id));
        item.insert(DATA.into(), s(encode(link, &what)?));
        item.insert(VERSION.into(), n(link.version));
        self.put_conditional(item, expected_version, &what).await
    }

    async fn list_setup_links(
        &self,
        directory: &DirectoryId,
    ) -> Result<Vec<SetupLink>, StoreError> {
        self.query_prefix(directory, SETUP_PREFIX)
            .await?
            .iter()
            .map(|i| decode(i, &format!("setup link of {directory}")))
            .collect()
    }
}
