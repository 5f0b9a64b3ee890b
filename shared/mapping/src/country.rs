//! Country names as BambooHR sends them ("United States", "United Kingdom") to ISO
//! 3166-1 alpha-2 codes ("US", "GB"), which SCIM requires in `addresses[].country`
//! (RFC 7643 §2.4 and §4.1.2).
//!
//! The table is the maintained `celes` crate's (official names, common short names
//! and aliases, alpha-2, alpha-3 and numeric codes); a target's own overrides are
//! consulted first, for the names neither knows. Names are compared ignoring case,
//! spaces and punctuation. A name nobody knows gives no code: the caller leaves the
//! country out rather than send something that is not ISO 3166-1.

use std::collections::BTreeMap;
use std::str::FromStr;

use celes::Country;

/// Country name (or code) to ISO 3166-1 alpha-2, with a target's overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountryCodes {
    /// Normalized name -> upper-case alpha-2 code, only valid codes kept.
    overrides: BTreeMap<String, &'static str>,
}

impl CountryCodes {
    /// The built-in table with `overrides` (name -> alpha-2 code) taking precedence.
    /// An override whose code is not an ISO 3166-1 alpha-2 code is ignored.
    pub fn with_overrides<'a>(overrides: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let overrides = overrides
            .into_iter()
            .filter_map(|(name, code)| Some((normalize(name), alpha2(code)?)))
            .collect();
        Self { overrides }
    }

    /// The ISO 3166-1 alpha-2 code for a country name or code, if known.
    pub fn alpha2(&self, name: &str) -> Option<&'static str> {
        let key = normalize(name);
        if key.is_empty() {
            return None;
        }
        if let Some(code) = self.overrides.get(&key) {
            return Some(code);
        }
        Country::from_str(&key)
            .or_else(|_| Country::from_alias(&key))
            // Official names often start with "the" ("The Netherlands").
            .or_else(|_| Country::from_str(&format!("the{key}")))
            .ok()
            .map(|c| c.alpha2)
    }
}

/// The canonical alpha-2 code when `code` is one (any case), else none.
fn alpha2(code: &str) -> Option<&'static str> {
    let code = code.trim();
    (code.len() == 2)
        .then(|| Country::from_alpha2(code).ok())
        .flatten()
        .map(|c| c.alpha2)
}

/// Lowercase letters and digits only: "Korea, Republic of" -> "korearepublicof".
fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bamboohr_country_names_become_alpha2_codes() {
        let codes = CountryCodes::default();
        for (name, code) in [
            ("United States", "US"),
            ("United Kingdom", "GB"),
            ("Canada", "CA"),
            ("Germany", "DE"),
            ("Australia", "AU"),
            ("Netherlands", "NL"),
            ("Ireland", "IE"),
            ("India", "IN"),
            ("Brazil", "BR"),
            ("  united   states ", "US"),
        ] {
            assert_eq!(codes.alpha2(name), Some(code), "{name}");
        }
    }

    #[test]
    fn codes_already_in_iso_form_are_kept() {
        let codes = CountryCodes::default();
        assert_eq!(codes.alpha2("US"), Some("US"));
        assert_eq!(codes.alpha2("gb"), Some("GB"));
        assert_eq!(codes.alpha2("DEU"), Some("DE"));
    }

    #[test]
    fn an_unknown_name_has_no_code() {
        let codes = CountryCodes::default();
        assert_eq!(codes.alpha2("Atlantis"), None);
        assert_eq!(codes.alpha2(""), None);
        assert_eq!(codes.alpha2(" , "), None);
    }

    #[test]
    fn overrides_win_and_invalid_override_codes_are_ignored() {
        let codes = CountryCodes::with_overrides([
            ("Atlantis", "Atlantis"),
            ("Lemuria", "ZZ"),
            ("United States", "CA"),
        ]);
        assert_eq!(codes.alpha2("Atlantis"), None);
        assert_eq!(codes.alpha2("Lemuria"), None);
        assert_eq!(codes.alpha2("United States"), Some("CA"));
        let uk = CountryCodes::with_overrides([("UK", "GB")]);
        assert_eq!(uk.alpha2("U.K."), Some("GB"));
    }
}
