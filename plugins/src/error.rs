//! [`ErrorCode`]: every stable, machine-readable error code Agora answers, each with its HTTP
//! status and what it means.
//!
//! It lives here, in the leaf crate every other Agora crate depends on, because plugins are
//! the lowest layer that produces codes (a plugin refuses a parameter, a platform fails, a
//! signature does not match). The actors add their own refusals, the gateway its request
//! errors, all from this one list, so a code cannot be misspelt and its status is decided in
//! one place. The README's error table and the OpenAPI error schema are checked against it.

use std::fmt;

use serde::{Serialize, Serializer};

/// Declares the codes once: the variant, its wire name, its status and its meaning.
macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $status:literal, $meaning:literal; )*) => {
        /// A stable error code. Serializes as its snake_case name (`"unknown_plugin"`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in the order of the README's table.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The snake_case name clients match on.
            pub const fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// The HTTP status the code is answered with. (A few Metagov routes answer some
            /// codes with Metagov's own status; the gateway decides those per route.)
            pub const fn status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)* }
            }

            /// The code named `name`, if there is one.
            pub fn from_name(name: &str) -> Option<ErrorCode> {
                match name { $($code => Some(ErrorCode::$variant),)* _ => None }
            }

            /// One line for people: when a client sees this code.
            pub const fn meaning(self) -> &'static str {
                match self { $(ErrorCode::$variant => $meaning,)* }
            }
        }
    };
}

error_codes! {
    // The request itself.
    InvalidJson = "invalid_json", 400, "the body is not valid JSON";
    InvalidBody = "invalid_body", 400, "the body could not be read";
    InvalidRequest = "invalid_request", 400, "a field is missing or has the wrong type (`field` names it)";
    InvalidPath = "invalid_path", 400, "a path segment is malformed";
    InvalidQuery = "invalid_query", 400, "a query parameter is malformed";
    MissingHeader = "missing_header", 400, "a required header is missing (`X-Metagov-Community`)";
    InvalidHeader = "invalid_header", 400, "a header's value is malformed (`X-Agora-Actor`: UTF-8, 1 to 200 bytes)";
    InvalidSlug = "invalid_slug", 400, "a community slug is not 1 to 36 of `[-A-Za-z0-9_]`";
    PayloadTooLarge = "payload_too_large", 413, "the body is over 1 MiB";
    RequestTimeout = "request_timeout", 408, "the body did not arrive within the body timeout (`--body-timeout-ms`); the connection is closed";
    DuplicateKey = "duplicate_key", 400, "a JSON object in the body has the same key twice (`field` names the path)";
    Unauthorized = "unauthorized", 401, "the token is missing, unknown or revoked";
    Forbidden = "forbidden", 403, "the token's role or communities do not cover the request (the message says why)";
    RouteNotFound = "route_not_found", 404, "no such route";
    MethodNotAllowed = "method_not_allowed", 405, "the route does not take that method";
    SchemaViolation = "schema_violation", 400, "an input fails the plugin's schema (`field` names it)";
    InvalidSettings = "invalid_settings", 400, "a plugin's merged settings (defaults < global < community) fail its schema";
    // Communities and plugins.
    CommunityExists = "community_exists", 400, "a community with that slug exists";
    CommunityNotFound = "community_not_found", 404, "no such community (400 when named by `X-Metagov-Community`, as in Metagov)";
    UnknownPlugin = "unknown_plugin", 400, "no such plugin is installed (404 when the plugin is the resource in the path)";
    PluginNotEnabled = "plugin_not_enabled", 400, "the plugin is not enabled for the community";
    PluginDisabled = "plugin_disabled", 400, "the plugin is disabled on the node";
    PluginInstanceNotFound = "plugin_instance_not_found", 404, "no plugin instance has that id";
    HookFailed = "hook_failed", 409, "the plugin's `on_enable` or `on_disable` refused the change";
    UnknownAction = "unknown_action", 404, "no such action, or not a public one on the public route";
    UnknownWidget = "unknown_widget", 404, "the plugin declares no dashboard widget of that name";
    Unsupported = "unsupported", 400, "the plugin does not offer this operation";
    ExpenseNotInCollective = "expense_not_in_collective", 400, "the Open Collective expense belongs to another collective";
    // Processes and votes.
    UnknownProcessType = "unknown_process_type", 404, "no such governance process";
    ProcessNotFound = "process_not_found", 404, "no process with that name and id";
    ProcessCompleted = "process_completed", 400, "the process has already completed";
    IneligibleVoter = "ineligible_voter", 403, "the voter is not eligible in this vote";
    ResultsHidden = "results_hidden", 403, "the vote hides its ballots until it closes";
    VoteClosed = "vote_closed", 409, "the vote is closed";
    BallotAfterDeadline = "ballot_after_deadline", 409, "the ballot arrived after `closing_at`";
    AlreadyVoted = "already_voted", 409, "the voter has voted and the vote does not allow changes";
    MalformedChoice = "malformed_choice", 400, "the choice does not have the method's shape";
    UnknownOption = "unknown_option", 400, "the choice names an option the vote does not have";
    DuplicateOption = "duplicate_option", 400, "the choice names an option twice";
    TooManySelections = "too_many_selections", 400, "the choice selects more options than `max`";
    TooFewSelections = "too_few_selections", 400, "the choice selects fewer options than `min`";
    ScoreOutOfRange = "score_out_of_range", 400, "a score is outside `min`..`max`";
    NotAnInteger = "not_an_integer", 400, "an amount is not a whole number";
    NegativeAmount = "negative_amount", 400, "an amount is negative";
    OverBudget = "over_budget", 400, "the choice spends more dots or credits than the vote gives";
    // Governance (`/api/v1/communities/{slug}/governance`, actions, items, subscriptions).
    GovernanceExists = "governance_exists", 409, "the community's governance was founded already";
    GovernanceNotFound = "governance_not_found", 404, "the community has no governance yet (`POST /governance` founds it)";
    ActionNotFound = "action_not_found", 404, "no action with that id that the agent may view";
    ItemNotFound = "item_not_found", 404, "no item with that id that the agent may view";
    VersionNotFound = "version_not_found", 404, "the item has no such version";
    SubscriptionNotFound = "subscription_not_found", 404, "the agent has no subscription to that item";
    NotPermitted = "not_permitted", 403, "the agent may not read this (`view action_notices` on an item's notices)";
    InvalidParams = "invalid_params", 400, "a change's parameter is missing, of the wrong type or out of range (`field` names it)";
    InvalidId = "invalid_id", 400, "an id is malformed (agent ids: 1 to 200 bytes, no control characters; numeric ids: 1 to 20 digits)";
    InvalidTarget = "invalid_target", 400, "a change's target is malformed or of the wrong kind for the change";
    UnknownChange = "unknown_change", 400, "no such change type";
    UnknownTarget = "unknown_target", 404, "a change's target (or an object it names) does not exist";
    UnknownRole = "unknown_role", 400, "no such role";
    BuiltinRole = "builtin_role", 400, "the built-in `members` role cannot be changed this way";
    AutomatedRole = "automated_role", 400, "an automated role's holders follow its rule and cannot be assigned";
    DuplicateRole = "duplicate_role", 400, "a role with that name exists";
    AlreadyInRole = "already_in_role", 400, "an agent named already holds the role";
    AlreadyMember = "already_member", 400, "an agent named is already a member";
    NotInRole = "not_in_role", 400, "an agent named does not hold the role";
    NotAMember = "not_a_member", 400, "an agent named is not a member";
    LastOwner = "last_owner", 400, "the change would leave nobody with owner authority";
    RoleInUse = "role_in_use", 400, "the role is referenced by a permission, the owners or the governors";
    NoChange = "no_change", 400, "the change would change nothing";
    NotACollection = "not_a_collection", 400, "the target item is not a collection";
    NotAContainer = "not_a_container", 400, "the target item cannot contain items (or not items of that type: organisations hold projects, projects hold modules)";
    UnknownPhaseType = "unknown_phase_type", 400, "a module's phase names a phase type the registry does not have";
    InvalidPhase = "invalid_phase", 400, "a module's phase ends at or before its start";
    PhaseClosed = "phase_closed", 409, "the vote is attached to an item whose module's active phase does not allow voting now";
    AnswerNotSupported = "answer_not_supported", 400, "the condition does not take that answer";
    AlreadyInCollection = "already_in_collection", 409, "the item is in that collection already";
    NotInCollection = "not_in_collection", 409, "the item is not in that collection";
    Inactive = "inactive", 409, "the item is deactivated";
    StillActive = "still_active", 409, "an item is destroyed only after it is deactivated";
    Destroyed = "destroyed", 409, "the item is destroyed and takes no changes";
    FieldsUnavailable = "fields_unavailable", 409, "an item's current fields could not be read";
    NotWaiting = "not_waiting", 409, "the condition is resolved already";
    TooEarly = "too_early", 409, "a consensus is resolved only after its `minimum_hours`";
    TooManyVotes = "too_many_votes", 409, "the action would open more votes than the node could name";
    // Identities (`/api/internal/identity/...`).
    IdentityNotFound = "identity_not_found", 404, "no identity with that id (Metagov answers 500)";
    AccountLinked = "account_linked", 409, "the account is linked to another identity with a quality at least as good";
    AccountNotFound = "account_not_found", 404, "no such linked account (Metagov answers 500)";
    // Webhooks and platforms.
    InvalidSignature = "invalid_signature", 401, "the webhook's signature is missing or does not match";
    WebhookNotRoutable = "webhook_not_routable", 404, "no community follows what the platform-wide webhook is about";
    PlatformError = "platform_error", 502, "the platform refused the call or answered nonsense";
    PlatformUnavailable = "platform_unavailable", 503, "the platform did not answer in time, or kept failing";
    CircuitOpen = "circuit_open", 503, "calls to the platform are paused after repeated failures";
    PlatformNotConfigured = "platform_not_configured", 400, "a setting needed to reach the platform is missing";
    PlatformRequestInvalid = "platform_request_invalid", 400, "the plugin built a request the client cannot send";
    // The node.
    TooManyConnections = "too_many_connections", 503, "the node holds `--max-connections` connections; this one is answered and closed";
    Overloaded = "overloaded", 503, "an actor's mailbox is full; retry after `Retry-After`";
    Unavailable = "unavailable", 503, "storage or the node cannot take the change now";
    NotOwner = "not_owner", 503, "cluster: no node serves the request's partition right now";
    ClusterUnavailable = "cluster_unavailable", 503, "cluster: Redis is unreachable; writes resume when it returns";
    OutcomeUnknown = "outcome_unknown", 504, "cluster: the node running a write went silent; it may or may not have been applied";
    NotReady = "not_ready", 503, "the node is starting or shutting down";
    StorageFailed = "storage_failed", 503, "storage refused a write; the node refuses writes until restarted";
    TaskStopped = "task_stopped", 503, "a background task of the node stopped";
    TokenNotFound = "token_not_found", 404, "no API token has that id";
    ClockBackwards = "clock_backwards", 400, "dev clock: `set_ms` is before the clock's time (it only moves forward)";
    Internal = "internal", 500, "a bug or unreadable stored state; details are in the node's log";
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_with_an_error_status() {
        let mut seen = std::collections::BTreeSet::new();
        for c in ErrorCode::ALL {
            let name = c.as_str();
            assert!(seen.insert(name), "{name} appears twice");
            assert!(
                name.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'),
                "{name} is not snake_case"
            );
            assert!((400..600).contains(&c.status()), "{name}: {}", c.status());
            assert!(!c.meaning().is_empty());
        }
    }

    #[test]
    fn codes_serialize_as_their_names() {
        assert_eq!(
            serde_json::to_value(ErrorCode::UnknownPlugin).unwrap(),
            serde_json::json!("unknown_plugin")
        );
        assert_eq!(ErrorCode::AlreadyVoted.to_string(), "already_voted");
    }
}
