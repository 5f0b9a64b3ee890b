//! BambooHR as the source of a directory: the client it syncs with (auth, options,
//! requested fields and mapping settings), its credentials and the write-back of
//! refreshed OAuth tokens, and checking credentials or registering a webhook at
//! BambooHR.

pub mod client;
pub mod connect;
pub mod credentials;
