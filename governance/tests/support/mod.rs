//! A small harness for scenario tests: a community, a manual clock, and the caller's side of
//! the contract kept honestly (item fields from the version records the core hands back,
//! timers and votes remembered, the log checked after every call).

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};

use agora_governance::{
    change_body, verify_chain, ActionRecord, Community, ConditionId, Ctx, Effects, Fields, Fired,
    ItemId, LogEntry, Submitted, Timer, VoteResult, VoteToOpen, HOUR_MS,
};
use serde_json::{json, Value};

pub struct World {
    pub c: Community,
    pub now: i64,
    pub fields: HashMap<ItemId, Fields>,
    pub timers: BTreeMap<ConditionId, Timer>,
    pub votes: BTreeMap<ConditionId, VoteToOpen>,
    pub log: Vec<LogEntry>,
    pub records: BTreeMap<u64, ActionRecord>,
}

impl World {
    pub fn found(founder: &str, body: Value) -> World {
        let now = 1_700_000_000_000;
        World {
            c: Community::found(founder, &body, now).expect("founded"),
            now,
            fields: HashMap::new(),
            timers: BTreeMap::new(),
            votes: BTreeMap::new(),
            log: Vec::new(),
            records: BTreeMap::new(),
        }
    }

    pub fn cx(&self) -> Ctx<'_> {
        Ctx::at(self.now).with_fields(&self.fields)
    }

    pub fn advance_hours(&mut self, h: f64) {
        self.now += (h * HOUR_MS as f64) as i64;
    }

    fn absorb(&mut self, fx: &Effects) {
        for v in &fx.versions {
            self.fields.insert(v.item, v.fields.clone());
        }
        for d in &fx.destroyed {
            self.fields.remove(d);
        }
        for t in &fx.timers {
            self.timers.insert(t.condition, t.clone());
        }
        for c in &fx.cancel_timers {
            self.timers.remove(c);
        }
        for v in &fx.open_votes {
            self.votes.insert(v.condition, v.clone());
        }
        for (c, _) in &fx.close_votes {
            self.votes.remove(c);
        }
        for a in &fx.actions {
            self.records.insert(a.id.0, a.clone());
        }
        self.log.extend(fx.log.iter().cloned());
        let chain: Vec<Value> = self.log.iter().map(LogEntry::to_json).collect();
        let head = verify_chain(&chain, None).expect("the log verifies");
        assert_eq!(head, self.c.log_head(), "the head is the last hash");
    }

    pub fn submit(
        &mut self,
        actor: &str,
        body: Value,
    ) -> Result<Submitted, agora_governance::GovError> {
        let fields = self.fields.clone();
        let cx = Ctx::at(self.now).with_fields(&fields);
        let out = self.c.submit(actor, &body, &cx)?;
        self.absorb(&out.effects);
        Ok(out)
    }

    /// Submits a change that must be accepted (recorded); returns the action.
    pub fn act(&mut self, actor: &str, change: &str, target: &str, params: Value) -> ActionRecord {
        match self.submit(actor, change_body(change, target, params)) {
            Ok(s) => s.action,
            Err(e) => panic!("{actor} {change} {target}: refused: {e:?}"),
        }
    }

    /// Submits a change that must be refused (not recorded); returns the error.
    pub fn refused(
        &mut self,
        actor: &str,
        change: &str,
        target: &str,
        params: Value,
    ) -> agora_governance::GovError {
        let before = self.c.snapshot();
        let e = self
            .submit(actor, change_body(change, target, params))
            .map(|s| s.action)
            .expect_err("refused");
        assert_eq!(self.c.snapshot(), before, "a refusal changes nothing");
        e
    }

    pub fn answer(
        &mut self,
        actor: &str,
        answer: &str,
        cond: ConditionId,
        params: Value,
    ) -> ActionRecord {
        self.act(actor, answer, &format!("condition:{cond}"), params)
    }

    pub fn status(&self, id: agora_governance::ActionId) -> String {
        self.records[&id.0].status.name().to_string()
    }

    pub fn record(&self, id: agora_governance::ActionId) -> &ActionRecord {
        &self.records[&id.0]
    }

    pub fn fire_timer(&mut self, cond: ConditionId) -> bool {
        let fields = self.fields.clone();
        let cx = Ctx::at(self.now).with_fields(&fields);
        match self.c.timeout_fired(cond, &cx) {
            Fired::Resolved(fx) => {
                self.absorb(&fx);
                true
            }
            _ => false,
        }
    }

    pub fn close_vote(&mut self, cond: ConditionId, result: VoteResult) -> bool {
        let fields = self.fields.clone();
        let cx = Ctx::at(self.now).with_fields(&fields);
        match self.c.vote_closed(cond, &result, &cx) {
            Fired::Resolved(fx) => {
                self.absorb(&fx);
                true
            }
            _ => false,
        }
    }

    pub fn item(&self, action: &ActionRecord) -> ItemId {
        ItemId(
            action.result["item"]
                .as_str()
                .expect("an item result")
                .parse()
                .unwrap(),
        )
    }

    pub fn permission_id(action: &ActionRecord) -> String {
        action.result["permission"]
            .as_str()
            .expect("a permission result")
            .to_string()
    }
}

pub fn members(names: &[&str]) -> Value {
    json!({"members": names})
}
