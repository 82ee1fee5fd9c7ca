//! Black-box tests against running apps and the `dialer` binary, with real Postgres and Redis.

mod agents;
mod cli;
mod engine;
mod health;
mod helpers;
mod import;
mod schema;
mod sim;
mod transfer;
mod webhooks;
