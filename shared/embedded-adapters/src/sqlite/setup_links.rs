//! `ports::SetupLinkStore` on [`SqliteStore`]: one row per link in `items`
//! (`SETUP#<link id>`, the JSON in `data`, the version in `version`), written with the
//! same version condition as directory records, as the DynamoDB store does.

use async_trait::async_trait;
use domain::DirectoryId;
use ports::keys::{setup_link_sk, SETUP_PREFIX};
use ports::{SetupLink, SetupLinkStore, StoreError};

use super::error::conflict;
use super::schema::{
    data_with_prefix, decode, dir_pk, encode, from_version, get_data, stored_version, Row,
};
use super::SqliteStore;

#[async_trait]
impl SetupLinkStore for SqliteStore {
    async fn get_setup_link(
        &self,
        directory: &DirectoryId,
        id: &str,
    ) -> Result<Option<SetupLink>, StoreError> {
        self.read(|c| {
            get_data(c, &dir_pk(directory), &setup_link_sk(id))?
                .map(|d| decode(&d, &format!("setup link {directory}/{id}")))
                .transpose()
        })
    }

    async fn put_setup_link(
        &self,
        link: &SetupLink,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError> {
        let what = format!("setup link {}/{}", link.directory_id, link.id);
        let pk = dir_pk(&link.directory_id);
        let sk = setup_link_sk(&link.id);
        let mut row = Row::new(pk.clone(), sk.clone());
        row.data = Some(encode(link, &what)?);
        row.version = Some(from_version(link.version, &what)?);
        self.write(|tx| {
            if stored_version(tx, &pk, &sk, &what)? != expected_version {
                return Err(conflict(what.clone(), expected_version));
            }
            row.put(tx)
        })
    }

    async fn list_setup_links(
        &self,
        directory: &DirectoryId,
    ) -> Result<Vec<SetupLink>, StoreError> {
        self.read(|c| {
            data_with_prefix(c, &dir_pk(directory), SETUP_PREFIX)?
                .iter()
                .map(|d| decode(d, &format!("setup link of {directory}")))
                .collect()
        })
    }
}
