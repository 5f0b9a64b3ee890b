//! The setup page's tests, one binary: the whole flow in headless Chromium (open the
//! link, a bad key, a good key, department groups, the first sync reaching a verifying
//! app), expired and revoked links, and the POST checks (CSRF token, JSON only, same
//! site, the attempt limit) over plain HTTP.

mod browser;
mod common;
mod oauth;
mod on_moto;
mod requests;
mod webdriver;
