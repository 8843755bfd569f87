//! The pure core of Agora's governance engine: who may change what in a community, and how a
//! change that needs others' consent waits for it. It joins Concord's authority pipeline
//! (owners, governors, specific permissions, conditions), Deme's items and 9-level permission
//! precedence, and adhocracy4's participation structure (organisations, projects, modules and
//! phases: contract section 6). The contract is
//! `../shared/governance-api.md`; this crate implements its sections 1–8 as plain
//! state and pure functions: no I/O, no actors, no HTTP, no clock (time is an argument).
//!
//! # Shape
//!
//! A [`Community`] value is one community's governance state: the constitution (owners,
//! governors, proposals switch, members with join times, roles), the permissions with their
//! index, item metadata (type, container, collections, active/destroyed, version, creator,
//! switches), the waiting actions with their conditions, per-agent tallies of implemented
//! actions (for `implemented_actions` roles and `rate_limit`), subscriptions and the log head.
//! Item bodies, versions, notices, action records and log entries are the caller's auxiliary
//! records: the core builds them and hands them back in [`Effects`], and reads item fields
//! through a [`FieldSource`] the caller fills.
//!
//! The caller (a per-community actor) calls:
//! - [`Community::found`] once, then [`Community::submit`] for every `POST /actions` and
//!   [`Community::dry_run`] for its dry run;
//! - [`Community::timeout_fired`] when a timer it scheduled fires, [`Community::vote_closed`]
//!   when a vote it opened closes, [`Community::set_vote_process`] once a vote is open;
//! - the reads: [`Community::can_view`], [`Community::can_read`], [`Community::item_json`],
//!   [`Community::list_items`], [`Community::can_read_notice`], [`Community::deliveries`],
//!   [`Community::constitution_json`], [`Community::can_view_target`];
//! - [`Community::snapshot`], [`Community::item_metas`] and [`Community::restore`] to persist.
//!
//! # The rules, in brief (each module states its own in full)
//!
//! - **Pipeline** (`pipeline.rs`): foundational → specific → governing → rejected. Grants are
//!   OR-ed, conditions on one grant AND-ed; batches are one action (implemented iff every
//!   change would be, rejected iff any would be, else waiting on every condition).
//! - **Permissions** (`permissions.rs`): Deme's 9 levels; the lowest level with a match
//!   decides; deny beats allow at one level; covering abilities apply only for agents they
//!   match; a community-wide `do_anything` allow overrides item-level rules; destroyed items
//!   deny everything; collection grants reach members only through `permission_enabled`.
//! - **Reads** (`community.rs`): members may view every item unless a `view` permission
//!   applies; fields and notices need their own abilities when permissions name them.
//! - **Conditions** (`conditions.rs`): approval, vote, consensus and the filters; timeouts.
//! - **Participation** (`participation.rs`): for phase-bound abilities inside a module, a
//!   gate between the foundational and specific steps (route `participation`): moderators,
//!   initiators and community-wide `do_anything` holders pass; others need the grant, the
//!   active phase and live structure. Private projects are invisible to outsiders.
//! - **Items** (`items.rs`, `item_types.rs`, `notices.rs`): types in code, versions, notices,
//!   subscriptions, lists that agree with single checks.
//! - **Log** (`log.rs`): a hash chain over canonical JSON, with its verifier.
//! - **Identity**: agent ids are opaque strings of at most 200 bytes; linked accounts are the
//!   caller's ([`LinkedAccounts`]).
//!
//! Validation never mutates: every change is applied to a scratch overlay first
//! (`scratch.rs`), and the same code, run again at the moment a waiting action would be
//! implemented, decides whether it is `stale`.

mod actions;
mod changes;
mod community;
mod conditions;
mod constitution;
mod error;
mod ids;
mod item_types;
mod items;
mod log;
mod notices;
mod participation;
mod permissions;
mod pipeline;
mod roles;
pub mod schema;
mod scratch;
mod snapshot;
mod templates;
mod when;

pub use actions::{
    change_body, votes_to_open, ActionRecord, Changed, ConditionSummary, Delivery, Effects, Fired,
    PendingAction, PhaseEvent, PhaseTimer, Refused, Resolution, Submitted, Timer, VoteToOpen,
};
pub use changes::{Ability, Change, ChangeKind, Params, Request, MAX_AGENTS, MAX_BATCH, NOTE_MAX};
pub use community::{Community, Ctx, Tallies, Tally, Viewer};
pub use conditions::{
    CondStatus, ConditionSpec, ConditionState, OnTimeout, Origin, ResolvedBy, Response, Timeout,
    VoteResult, Who, DEFAULT_CONSENSUS_MINIMUM_MS, DEFAULT_WAIT_MS, MAX_RATE_COUNT,
};
pub use constitution::{Authority, Constitution, Switches};
pub use error::{GovError, Status as ErrorStatus};
pub use ids::{
    check_agent_id, parse_numeric_id, ActionId, ConditionId, ItemId, NoticeId, ObjectRef,
    PermissionId, RoleKey, MAX_AGENT_BYTES, MEMBERS_ROLE,
};
pub use item_types::{Field, Fields, ItemType};
pub use items::{
    merge_fields, next_version, Agents, FieldSource, ItemMeta, Items, ListPage, ListQuery,
    Membership, NoFields, VersionRecord, MAX_LIMIT, MAX_SCAN,
};
pub use log::{body_hash, entry_hash, verify_chain, LogEntry, LogKind, VerifyError, GENESIS};
pub use notices::{Notice, NoticeKind, Subscription};
pub use participation::{
    active_phase, phase_type, Access, Phase, PhaseAbility, PhaseType, Placement, Structure,
    MAX_PHASES, PHASE_TYPES,
};
pub use permissions::{
    level, AppliesTo, Consulted, Permission, PermissionSpec, Permissions, Reach, WalkOutcome,
};
pub use pipeline::{CheckDecision, CheckOutcome, Decision, Grant, Route, Status, Step};
pub use roles::{LinkedAccounts, NoLinkedAccounts, Role, RoleDef, Rule};
pub use scratch::Rating;
pub use snapshot::{Snapshot, SnapshotParts, SNAPSHOT_FORMAT};
pub use templates::{Template, TemplateSpec};
pub use when::{rfc3339, Millis, HOUR_MS};
