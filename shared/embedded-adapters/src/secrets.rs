//! Secrets for the local stack: one JSON file holding every directory's secrets
//! (mode 0600), each part under its own key (`{"<name>/bamboohr": {...},
//! "<name>/webhook": {...}, "<name>/targets": {...}}`), as Secrets Manager holds them.
//! A pre-split entry (`{"<name>": {...}}`, every part in one, as files written before
//! the split hold) is read for the parts that have no entry of their own, and the first
//! write splits it. A `BSYNC_SECRET_<NAME>` environment variable (the whole secret,
//! every part) takes precedence, so a key never has to touch the disk.
//!
//! With a sealer ([`FileSecrets::with_sealer`], the local stack's [`LocalSealer`]),
//! each part is written sealed with a per-directory data key (an envelope, see
//! `ports::sealer`) and opens only for its own directory; entries written before are
//! read as they are and sealed at their next write.
//!
//! [`LocalSealer`]: crate::sealer::LocalSealer

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use ports::{
    CredentialSealer, DirectorySecrets, SealedCredential, SecretPart, SecretStore, SecretsError,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

/// The local secret store.
pub struct FileSecrets {
    path: Option<PathBuf>,
    lock: Mutex<()>,
    sealer: Option<Arc<dyn CredentialSealer>>,
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
            sealer: None,
        }
    }

    /// Seals every part written from now on with `sealer` (a data key per
    /// directory), and opens sealed parts when reading.
    pub fn with_sealer(mut self, sealer: Arc<dyn CredentialSealer>) -> Self {
        self.sealer = Some(sealer);
        self
    }

    /// Secrets from the environment only; writes are refused.
    pub fn env_only() -> Self {
        Self {
            path: None,
            lock: Mutex::new(()),
            sealer: None,
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

fn stored(secrets: &DirectorySecrets) -> serde_json::Value {
    serde_json::from_str(secrets.to_json().expose_secret()).expect("secrets serialize to JSON")
}

impl FileSecrets {
    /// Reads entry `key` of directory `name`: opened with the sealer when sealed.
    async fn parse(
        &self,
        name: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<DirectorySecrets, SecretsError> {
        let text = value.to_string();
        match SealedCredential::from_envelope(key, &text)? {
            None => DirectorySecrets::from_json(key, &text),
            Some(sealed) => {
                let Some(sealer) = &self.sealer else {
                    return Err(SecretsError::Malformed {
                        name: key.to_string(),
                        reason: "sealed, and this store has no sealer to open it".into(),
                    });
                };
                let json = sealer.open(name, &sealed).await?;
                DirectorySecrets::from_json(key, json.expose_secret())
            }
        }
    }

    /// What is written for `secrets` of directory `name`: sealed when a sealer is set.
    async fn entry(
        &self,
        name: &str,
        secrets: &DirectorySecrets,
    ) -> Result<serde_json::Value, SecretsError> {
        let Some(sealer) = &self.sealer else {
            return Ok(stored(secrets));
        };
        let sealed = sealer.seal(name, &secrets.to_json()).await?;
        Ok(serde_json::from_str(&sealed.to_envelope()).expect("an envelope is JSON"))
    }
}

#[async_trait]
impl SecretStore for FileSecrets {
    async fn get_parts(
        &self,
        name: &str,
        parts: &[SecretPart],
    ) -> Result<DirectorySecrets, SecretsError> {
        if let Ok(json) = std::env::var(env_var_for(name)) {
            return Ok(DirectorySecrets::from_json(name, &json)?.only(parts));
        }
        let _guard = self.lock.lock().await;
        let all = self.read_all().await?;
        let mut out = DirectorySecrets::default();
        let mut found = false;
        let mut pre_split: Option<DirectorySecrets> = None;
        for part in parts {
            let key = part.secret_name(name);
            if let Some(value) = all.get(&key) {
                out.take_part(*part, &self.parse(name, &key, value).await?);
                found = true;
            } else if let Some(value) = all.get(name) {
                if pre_split.is_none() {
                    pre_split = Some(self.parse(name, name, value).await?);
                }
                if let Some(whole) = &pre_split {
                    out.take_part(*part, whole);
                }
                found = true;
            }
        }
        if !found {
            return Err(SecretsError::NotFound {
                name: name.to_string(),
            });
        }
        Ok(out)
    }

    async fn put_parts(
        &self,
        name: &str,
        parts: &[SecretPart],
        secrets: &DirectorySecrets,
    ) -> Result<(), SecretsError> {
        let _guard = self.lock.lock().await;
        let mut all = self.read_all().await?;
        // The first write splits a pre-split entry: parts without an entry of their own
        // get theirs from it, then it goes.
        if let Some(value) = all.remove(name) {
            let whole = self.parse(name, name, &value).await?;
            for part in SecretPart::ALL {
                if let std::collections::btree_map::Entry::Vacant(slot) =
                    all.entry(part.secret_name(name))
                {
                    slot.insert(self.entry(name, &whole.only(&[part])).await?);
                }
            }
        }
        for part in parts {
            let entry = self.entry(name, &secrets.only(&[*part])).await?;
            all.insert(part.secret_name(name), entry);
        }
        self.write_all(&all).await
    }

    async fn delete(&self, name: &str) -> Result<(), SecretsError> {
        let _guard = self.lock.lock().await;
        let mut all = self.read_all().await?;
        let mut removed = all.remove(name).is_some();
        for part in SecretPart::ALL {
            removed |= all.remove(&part.secret_name(name)).is_some();
        }
        if removed {
            self.write_all(&all).await?;
        }
        Ok(())
    }
}

impl FileSecrets {
    /// Writes `whole` as a pre-split entry (every part under `name`), as files written
    /// before the split hold them. For tests of the migration.
    pub async fn put_pre_split(
        &self,
        name: &str,
        whole: &DirectorySecrets,
    ) -> Result<(), SecretsError> {
        let _guard = self.lock.lock().await;
        let mut all = self.read_all().await?;
        let entry = self.entry(name, whole).await?;
        all.insert(name.to_string(), entry);
        self.write_all(&all).await
    }

    /// Whether a pre-split entry `name` exists. For tests of the migration.
    pub async fn has_pre_split(&self, name: &str) -> Result<bool, SecretsError> {
        let _guard = self.lock.lock().await;
        Ok(self.read_all().await?.contains_key(name))
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

    struct Old<'a>(&'a FileSecrets);

    #[async_trait]
    impl ports::contract_secrets::PreSplitSecrets for Old<'_> {
        async fn plant(&self, name: &str, whole: &DirectorySecrets) {
            self.0.put_pre_split(name, whole).await.unwrap();
        }
        async fn exists(&self, name: &str) -> bool {
            self.0.has_pre_split(name).await.unwrap()
        }
    }

    #[tokio::test]
    async fn the_file_store_passes_the_secret_store_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSecrets::open(dir.path().join("secrets.json"));
        ports::contract_secrets::run_all(&store, "file").await;
        ports::contract_secrets::pre_split_secrets_are_read_until_the_first_write_splits_them(
            &store,
            &Old(&store),
            "file",
        )
        .await;
    }

    #[tokio::test]
    async fn a_sealing_file_store_passes_the_secret_store_contract_and_keeps_no_key_in_clear() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("secrets.json");
        let sealer = Arc::new(crate::sealer::LocalSealer::new(&[9; 32]));
        let store = FileSecrets::open(&path).with_sealer(sealer.clone());
        ports::contract_secrets::run_all(&store, "sealed").await;

        let secrets = DirectorySecrets {
            bamboohr_api_key: Some(SecretString::from("bamboo-key-7f3e")),
            ..Default::default()
        };
        store.put("acme", &secrets).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("bamboo-key-7f3e"), "sealed on disk");
        assert!(text.contains(ports::ENVELOPE_SCHEME));
        assert_eq!(
            store
                .get("acme")
                .await
                .unwrap()
                .bamboohr_api_key
                .unwrap()
                .expose_secret(),
            "bamboo-key-7f3e"
        );
        // acme's sealed entry moved under another directory does not open there.
        let mut all: BTreeMap<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
        let moved = all["acme/bamboohr"].clone();
        all.insert("globex/bamboohr".into(), moved);
        std::fs::write(&path, serde_json::to_string(&all).unwrap()).unwrap();
        assert!(store.get("globex").await.is_err());
        // Without the sealer a sealed entry is refused, not misread.
        let plain = FileSecrets::open(&path);
        assert!(plain.get("acme").await.is_err());
    }

    #[tokio::test]
    async fn each_part_is_its_own_entry_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        let store = FileSecrets::open(&path);
        store
            .put("acme", &ports::contract_secrets::sample("x"))
            .await
            .unwrap();
        let file: BTreeMap<String, serde_json::Value> =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let keys: Vec<&str> = file.keys().map(String::as_str).collect();
        assert_eq!(keys, ["acme/bamboohr", "acme/targets", "acme/webhook"]);
        assert!(file["acme/webhook"].get("bamboohrApiKey").is_none());
        assert!(file["acme/bamboohr"].get("webhookKeys").is_none());
    }

    #[test]
    fn env_var_names_are_derived_from_the_secret_name() {
        assert_eq!(
            env_var_for("bamboohr-sync/acme"),
            "BSYNC_SECRET_BAMBOOHR_SYNC_ACME"
        );
    }
}
