//! Setup links: what the operator sends a customer's IT admin so they can connect
//! their BambooHR company themselves (the portal). A link belongs to one directory, is
//! revocable and expires; the store keeps only a hash of its token, the hashes of the
//! browser sessions it was exchanged for, and its recent validation attempts (the
//! portal's rate limit). Records are written conditionally on their version, like
//! directories, so two portal requests never lose each other's change.

use async_trait::async_trait;
use domain::DirectoryId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::store_error::StoreError;

/// Where a setup link stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SetupLinkState {
    /// It opens the setup page.
    Active,
    /// Past its expiry.
    Expired,
    /// Revoked by an operator.
    Revoked,
}

impl SetupLinkState {
    /// The stored name, e.g. `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

/// A browser session a link's token was exchanged for: only the hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetupSession {
    /// Hex SHA-256 of the session secret.
    pub secret_hash: String,
    /// When the session ends (never after the link's expiry).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// One setup link of a directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetupLink {
    /// The directory it sets up (which may not be connected yet).
    pub directory_id: DirectoryId,
    /// The link's id (`sl…`, no `.`), shown to operators.
    pub id: String,
    /// Hex SHA-256 of the token's secret part; the token itself is never stored.
    pub token_hash: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Who created it.
    pub created_by: String,
    /// When it stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When it was revoked, if it was.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// Who revoked it.
    #[serde(default)]
    pub revoked_by: Option<String>,
    /// The BambooHR base URL the page connects to instead of
    /// `https://<subdomain>.bamboohr.com` (a simulator or proxy; operators only).
    #[serde(default)]
    pub bamboohr_base_url: Option<String>,
    /// Live browser sessions.
    #[serde(default)]
    pub sessions: Vec<SetupSession>,
    /// Recent validation attempts (token exchanges that failed, credential checks),
    /// newest last; the portal keeps only the last minute's.
    #[serde(default, with = "rfc3339_list")]
    pub attempts: Vec<OffsetDateTime>,
    /// When the page last used it.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// Employees BambooHR reported when the page last linked the company.
    #[serde(default)]
    pub linked_employees: Option<u64>,
    /// Stored version; writes are conditional on it (1 for a new link).
    pub version: u64,
}

impl SetupLink {
    /// The link's state at `now`: revoked wins over expired.
    pub fn state(&self, now: OffsetDateTime) -> SetupLinkState {
        if self.revoked_at.is_some() {
            SetupLinkState::Revoked
        } else if now >= self.expires_at {
            SetupLinkState::Expired
        } else {
            SetupLinkState::Active
        }
    }
}

mod rfc3339_list {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use time::format_description::well_known::Rfc3339;
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(v: &[OffsetDateTime], s: S) -> Result<S::Ok, S::Error> {
        let texts: Result<Vec<String>, _> = v.iter().map(|t| t.format(&Rfc3339)).collect();
        texts.map_err(serde::ser::Error::custom)?.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<OffsetDateTime>, D::Error> {
        let texts = Vec::<String>::deserialize(d)?;
        texts
            .iter()
            .map(|t| OffsetDateTime::parse(t, &Rfc3339).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// Setup link records.
#[async_trait]
pub trait SetupLinkStore: Send + Sync {
    /// Reads one link of a directory.
    async fn get_setup_link(
        &self,
        directory: &DirectoryId,
        id: &str,
    ) -> Result<Option<SetupLink>, StoreError>;

    /// Writes a link whose `version` is `expected_version + 1` (or 1 when None); fails
    /// with `Conflict` when the stored version differs (or, for None, a link with this
    /// id exists).
    async fn put_setup_link(
        &self,
        link: &SetupLink,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError>;

    /// Every link of a directory, in id order.
    async fn list_setup_links(&self, directory: &DirectoryId)
        -> Result<Vec<SetupLink>, StoreError>;
}
