//! Secrets for the local stack: one JSON file holding every directory's secrets
//! (`{"<name>": {...}}`, mode 0600), with `BSYNC_SECRET_<NAME>` environment variables
//! taking precedence so a key never has to touch the disk.

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use ports::{DirectorySecrets, SecretStore, SecretsError};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

/// The local secret store.
pub struct FileSecrets {
    path: Option<PathBuf>,
    lock: Mutex<()>,
}

/// The environment variable consulted for a secret name: upper-cased, with every
/// character outside `A-Z0-9` replaced by `_`.
pub fn env_var_for(name: &str) -> String {
    let tail: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("BSYNC_SECRET_{tail}")
}

impl FileSecrets {
    /// Secrets kept in `path` (created on first write).
    pub fn open(path: impl Into<PathBuf>) -> Self {
        Self {
            path: Some(path.into()),
            lock: Mutex::new(()),
        }
    }

    /// Secrets from the environment only; writes are refused.
    pub fn env_only() -> Self {
        Self {
            path: None,
            lock: Mutex::new(()),
        }
    }

    async fn read_all(&self) -> Result<BTreeMap<String, serde_json::Value>, SecretsError> {
        let Some(path) = &self.path else {
            return Ok(BTreeMap::new());
        };
        match tokio::fs::read(path).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| SecretsError::Malformed {
                name: path.display().to_string(),
                reason: format!("not a JSON object of secrets (line {})", e.line()),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(SecretsError::Unavailable {
                reason: format!("reading {}: {}", path.display(), e.kind()),
            }),
        }
    }

    async fn write_all(
        &self,
        all: &BTreeMap<String, serde_json::Value>,
    ) -> Result<(), SecretsError> {
        let Some(path) = &self.path else {
            return Err(SecretsError::Unavailable {
                reason: "environment-only secrets cannot be written".into(),
            });
        };
        let unavailable = |e: std::io::Error| SecretsError::Unavailable {
            reason: format!("writing {}: {}", path.display(), e.kind()),
        };
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(unavailable)?;
        }
        let bytes = SecretString::from(serde_json::to_string_pretty(all).expect("json serializes"));
        let tmp = path.with_extension("tmp");
        tokio::fs::write(&tmp, bytes.expose_secret().as_bytes())
            .await
            .map_err(unavailable)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            tokio::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
                .await
                .map_err(unavailable)?;
        }
        tokio::fs::rename(&tmp, path).await.map_err(unavailable)
    }
}

#[async_trait]
impl SecretStore for FileSecrets {
    async fn get(&self, name: &str) -> Result<DirectorySecrets, SecretsError> {
        if let Ok(json) = std::env::var(env_var_for(name)) {
            return DirectorySecrets::from_json(name, &json);
        }
        let _guard = self.lock.lock().await;
        let all = self.read_all().await?;
        let value = all.get(name).ok_or_else(|| SecretsError::NotFound {
            name: name.to_string(),
        })?;
        DirectorySecrets::from_json(name, &value.to_string())
    }

    async fn put(&self, name: &str, secrets: &DirectorySecrets) -> Result<(), SecretsError> {
        let _guard = self.lock.lock().await;
        let mut all = self.read_all().await?;
        let value: serde_json::Value = serde_json::from_str(secrets.to_json().expose_secret())
            .expect("secrets serialize to JSON");
        all.insert(name.to_string(), value);
        self.write_all(&all).await
    }

    async fn delete(&self, name: &str) -> Result<(), SecretsError> {
        let _guard = self.lock.lock().await;
        let mut all = self.read_all().await?;
        if all.remove(name).is_some() {
            self.write_all(&all).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn secrets_round_trip_through_the_file_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        let store = FileSecrets::open(&path);
        let s = DirectorySecrets {
            bamboohr_api_key: Some(SecretString::from("key-1")),
            ..Default::default()
        };
        store.put("acme", &s).await.unwrap();
        let back = store.get("acme").await.unwrap();
        assert_eq!(back.bamboohr_api_key.unwrap().expose_secret(), "key-1");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        store.delete("acme").await.unwrap();
        assert!(matches!(
            store.get("acme").await,
            Err(SecretsError::NotFound { .. })
        ));
        store.delete("acme").await.unwrap();
    }

    #[test]
    fn env_var_names_are_derived_from_the_secret_name() {
        assert_eq!(
            env_var_for("bamboohr-sync/acme"),
            "BSYNC_SECRET_BAMBOOHR_SYNC_ACME"
        );
    }
}
