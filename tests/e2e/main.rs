//! End-to-end tests of Agora: real `agora serve` processes on free ports, driven over HTTP the
//! way a Metagov driver (PolicyKit and others) drives them, with a recording sink in the test
//! process playing the driver's event receiver and the process callbacks.
//!
//! One integration-test binary (to link once); one module per area of the API. Every test starts
//! its own node(s), so tests run in parallel; `harness` holds the shared machinery.

mod harness;

mod actions;
mod auth;
mod backup;
mod bad_input;
mod browser;
mod cli;
mod cluster;
mod communities;
mod concurrency;
mod dev_clock;
mod durability;
mod events;
mod framing;
mod governance_api;
mod governance_conditions;
mod governance_contract;
mod governance_durability;
mod governance_identity;
mod governance_levels;
mod governance_participation;
mod governance_permissions;
mod ops;
mod outbox;
mod platform_calls;
mod platform_discourse;
mod platform_github;
mod platform_loomio;
mod platform_opencollective;
mod plugins;
mod principal;
mod processes;
mod slow_clients;
mod standins;
mod tokens;
mod votes;
mod webhooks;
mod workload;
