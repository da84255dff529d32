//! Routing, decided once for the worker, `work --only` and `replay --to`:
//! which configured destinations an event goes to, and each destination's
//! retry policy and rate limit, held in one `Route` value per destination.

use std::ops::Index;
use std::time::Duration;

use wildmatch::WildMatch;

use crate::alert;
use crate::dest::{DestConfig, Kind};
use crate::event::Event;
use crate::filter::Verdict;
use crate::rate::Rate;
use crate::retry::RetryPolicy;
use crate::sanitize;

/// The destination a dead letter names when it belongs to no destination:
/// the event could not be decoded or rendered at all. Replaying such a
/// letter sends it wherever its type routes.
pub const POISON_DEST: &str = "*";

/// A route's place in its [`Routes`]: only `Routes` makes them, so one
/// always names a route that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteId(usize);

/// One configured destination as routing sees it.
#[derive(Debug, Clone)]
pub struct Route {
    id: RouteId,
    config: DestConfig,
    globs: Vec<WildMatch>,
    policy: RetryPolicy,
    rate: Option<Rate>,
    /// Removed from the configuration by a reload: nothing is routed to it
    /// any more, and its id still names it for what was under way.
    retired: bool,
}

impl Route {
    pub fn id(&self) -> RouteId {
        self.id
    }

    /// Its configured name: what `--to` and `--only` name, and what retries
    /// and dead letters record.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn kind(&self) -> &'static dyn Kind {
        self.config.kind()
    }

    /// What it was built from, to build its sender.
    pub fn config(&self) -> &DestConfig {
        &self.config
    }

    /// Whether a reload removed it from the configuration.
    pub fn is_retired(&self) -> bool {
        self.retired
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The rate limit every worker shares for this destination: its
    /// configured `rate`, else its kind's default; `None` for unlimited.
    pub fn rate(&self) -> Option<Rate> {
        self.rate
    }

    /// Its circuit breaker's settings; `None` when `breaker = "off"`.
    pub fn breaker(&self) -> Option<crate::breaker::Settings> {
        self.config.breaker
    }

    /// Whether events of type `event_type` go to this destination, as far
    /// as its globs say.
    pub fn takes(&self, event_type: &str) -> bool {
        !self.retired && self.globs.iter().any(|glob| glob.matches(event_type))
    }

    /// Whether `event` goes to this destination: its globs match the type
    /// and its `when`, if any, is true of it. An alert never goes to the
    /// destination it is about: it would fail there too, or tell a receiver
    /// about itself.
    pub fn decide(&self, event: &Event) -> Verdict {
        if !self.takes(&event.kind) || alert::about(event) == Some(self.name()) {
            return Verdict::Unwanted;
        }
        match &self.config.when {
            Some(when) => when.judge(event),
            None => Verdict::Wanted,
        }
    }
}

/// A name given to `--only`, `--to` or `pause` that no destination has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{flag} {name}: no such destination (configured: {configured}){}",
    suggestion.as_ref().map(|s| format!("; did you mean '{s}'?")).unwrap_or_default()
)]
pub struct UnknownDestination {
    pub flag: &'static str,
    pub name: String,
    /// The configured names, comma-separated.
    pub configured: String,
    /// The configured name nearest to `name`, when one is near.
    pub suggestion: Option<String>,
}

/// Every configured destination, in configuration order.
#[derive(Debug, Clone, Default)]
pub struct Routes(Vec<Route>);

impl Routes {
    /// Routes for `dests`; `max_attempts` overrides every destination's
    /// own attempt budget when set.
    pub fn new(dests: &[DestConfig], max_attempts: Option<u32>, retry_base: Duration) -> Routes {
        Routes(
            dests
                .iter()
                .enumerate()
                .map(|(index, dest)| Route {
                    id: RouteId(index),
                    globs: dest.events.iter().map(|g| WildMatch::new(g)).collect(),
                    policy: RetryPolicy {
                        max_attempts: max_attempts
                            .unwrap_or_else(|| dest.kind().default_attempts()),
                        base: retry_base,
                    },
                    rate: dest.rate_limit(),
                    config: dest.clone(),
                    retired: false,
                })
                .collect(),
        )
    }

    /// These routes after a reload to `dests`: a destination keeps its id
    /// by name (with its new settings), a new one takes the next id, and a
    /// removed one stays retired, so that every id handed out still names
    /// the route it was handed out for.
    pub fn reloaded(
        &self,
        dests: &[DestConfig],
        max_attempts: Option<u32>,
        retry_base: Duration,
    ) -> Routes {
        let fresh = Routes::new(dests, max_attempts, retry_base);
        let mut routes: Vec<Route> = self
            .0
            .iter()
            .map(|old| match fresh.named(old.name()) {
                Some(new) => Route {
                    id: old.id,
                    ..new.clone()
                },
                None => Route {
                    retired: true,
                    ..old.clone()
                },
            })
            .collect();
        for new in fresh.0 {
            if self.named_any(new.name()).is_none() {
                let id = RouteId(routes.len());
                routes.push(Route { id, ..new });
            }
        }
        Routes(routes)
    }

    /// The configured routes (none a reload retired).
    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.0.iter().filter(|r| !r.retired)
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, id: RouteId) -> &Route {
        &self.0[id.0]
    }

    /// The configured route named `name`.
    pub fn named(&self, name: &str) -> Option<&Route> {
        self.iter().find(|r| r.name() == name)
    }

    /// The route named `name`, configured or retired.
    fn named_any(&self, name: &str) -> Option<&Route> {
        self.0.iter().find(|r| r.name() == name)
    }

    /// The routes `event` goes to. A `when` that cannot be evaluated routes
    /// nowhere: the first such event of each destination is a warning, the
    /// next ones are said at `-v`, so a broken filter is seen without one
    /// line per event.
    pub fn of<'a>(&'a self, event: &'a Event) -> impl Iterator<Item = &'a Route> + 'a {
        self.0.iter().filter(move |r| match r.decide(event) {
            Verdict::Wanted => true,
            Verdict::Unwanted => false,
            Verdict::Failed(error) => {
                if let Some(when) = &r.config.when {
                    let (level, more) = if when.first_failure() {
                        (log::Level::Warn, "; the next failures are shown at -v")
                    } else {
                        (log::Level::Debug, "")
                    };
                    log::log!(
                        level,
                        "{}: when {:?} failed on a {} event, which goes nowhere by this route: {}{more}",
                        r.name(),
                        when.source(),
                        sanitize::escape(&event.kind),
                        sanitize::escape(&error)
                    );
                }
                false
            }
        })
    }

    /// The routes `names` name (`--only a --only b`, `--to a`), each checked:
    /// `flag` is the option named in the error.
    pub fn resolve(
        &self,
        flag: &'static str,
        names: &[String],
    ) -> Result<Vec<RouteId>, UnknownDestination> {
        names
            .iter()
            .map(|name| {
                self.named(name)
                    .map(Route::id)
                    .ok_or_else(|| self.unknown(flag, name))
            })
            .collect()
    }

    /// The route named `name`, or an error suggesting the nearest name.
    pub fn lookup(&self, flag: &'static str, name: &str) -> Result<&Route, UnknownDestination> {
        self.named(name).ok_or_else(|| self.unknown(flag, name))
    }

    fn unknown(&self, flag: &'static str, name: &str) -> UnknownDestination {
        let names: Vec<&str> = self.iter().map(Route::name).collect();
        UnknownDestination {
            flag,
            name: crate::sanitize::escape(name).into_owned(),
            configured: names.join(", "),
            suggestion: crate::catalog::nearest(name, names.iter().copied()).map(str::to_owned),
        }
    }

    /// A value for each route, retired ones included (a worker's sender,
    /// lane and lag), looked up by the route's id.
    pub fn each<T>(&self, f: impl FnMut(&Route) -> T) -> PerRoute<T> {
        PerRoute(self.0.iter().map(f).collect())
    }

    /// Only the routes `ids` names, renumbered: what `replay --to` narrows
    /// routing to.
    pub fn only(&self, ids: &[RouteId]) -> Routes {
        let dests: Vec<&Route> = self.iter().filter(|r| ids.contains(&r.id)).collect();
        Routes(
            dests
                .into_iter()
                .enumerate()
                .map(|(index, route)| Route {
                    id: RouteId(index),
                    ..route.clone()
                })
                .collect(),
        )
    }
}

/// One value per route of a [`Routes`], indexed by [`RouteId`].
#[derive(Debug)]
pub struct PerRoute<T>(Vec<T>);

impl<T> PerRoute<T> {
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.0.iter()
    }
}

impl<T> Index<RouteId> for PerRoute<T> {
    type Output = T;

    fn index(&self, id: RouteId) -> &T {
        &self.0[id.0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate::RateSetting;

    fn dest(name: &str, settings: DestConfig, events: &[&str]) -> DestConfig {
        DestConfig {
            name: name.into(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            ..settings
        }
    }

    fn routes() -> Routes {
        let slack = DestConfig::slack("", crate::secret::Secret::new("https://hooks.example/x"));
        Routes::new(
            &[
                dest("slack", slack, &["user.*", "billing.failed"]),
                dest("console", DestConfig::console(""), &["*"]),
                dest("audit", DestConfig::console(""), &["import.?ompleted"]),
            ],
            None,
            Duration::from_secs(1),
        )
    }

    fn event(kind: &str) -> Event {
        with(kind, serde_json::json!({}))
    }

    fn with(kind: &str, payload: serde_json::Value) -> Event {
        Event {
            id: "evt_1".into(),
            kind: kind.into(),
            ts: "2026-01-01T00:00:00Z".into(),
            payload: payload.as_object().unwrap().clone(),
        }
    }

    fn names<'a>(routes: impl Iterator<Item = &'a Route>) -> Vec<&'a str> {
        routes.map(Route::name).collect()
    }

    #[test]
    fn an_event_goes_to_every_route_whose_globs_match_its_type() {
        let routes = routes();
        assert_eq!(
            names(routes.of(&event("user.signup"))),
            ["slack", "console"]
        );
        assert_eq!(
            names(routes.of(&event("billing.failed"))),
            ["slack", "console"]
        );
        assert_eq!(names(routes.of(&event("billing.paid"))), ["console"]);
        assert_eq!(
            names(routes.of(&event("import.completed"))),
            ["console", "audit"]
        );
        assert_eq!(names(routes.of(&event("user"))), ["console"]);
    }

    /// Big imports to #sales, churn to #billing, everything else to #growth.
    fn channels() -> Routes {
        let slack = || DestConfig::slack("", crate::secret::Secret::new("https://hooks.example/x"));
        let when = |source: &str| Some(crate::filter::When::compile(source).unwrap());
        let mut sales = dest("sales", slack(), &["import.completed"]);
        sales.when = when(r#"payload.row_count >= 100000 && payload.plan in ["pro", "team"]"#);
        let billing = dest("billing", slack(), &["subscription.canceled"]);
        let mut growth = dest("growth", slack(), &["*"]);
        growth.when = when(r#"type != "subscription.canceled""#);
        Routes::new(&[sales, billing, growth], None, Duration::from_secs(1))
    }

    #[test]
    fn when_narrows_what_the_globs_match() {
        let routes = channels();
        let import = |rows: u64, plan: &str| {
            with(
                "import.completed",
                serde_json::json!({"row_count": rows, "plan": plan}),
            )
        };
        assert_eq!(
            names(routes.of(&import(250_000, "pro"))),
            ["sales", "growth"]
        );
        assert_eq!(names(routes.of(&import(250_000, "free"))), ["growth"]);
        assert_eq!(names(routes.of(&import(99_999, "team"))), ["growth"]);
        assert_eq!(
            names(routes.of(&event("subscription.canceled"))),
            ["billing"]
        );
        assert_eq!(names(routes.of(&event("user.signup"))), ["growth"]);
    }

    #[test]
    fn a_when_that_fails_routes_nowhere_by_its_route_only() {
        let routes = channels();
        let missing = with("import.completed", serde_json::json!({"plan": "pro"}));
        assert!(matches!(
            routes.named("sales").unwrap().decide(&missing),
            Verdict::Failed(_)
        ));
        assert_eq!(names(routes.of(&missing)), ["growth"]);
        assert_eq!(
            routes.named("billing").unwrap().decide(&missing),
            Verdict::Unwanted
        );
    }

    #[test]
    fn narrowing_keeps_each_routes_when() {
        let routes = channels();
        let ids = routes.resolve("--to", &["sales".into()]).unwrap();
        let sales = routes.only(&ids);
        let small = with(
            "import.completed",
            serde_json::json!({"row_count": 5, "plan": "pro"}),
        );
        assert_eq!(names(sales.of(&small)), Vec::<&str>::new());
    }

    #[test]
    fn an_alert_goes_everywhere_its_type_routes_but_to_the_destination_it_is_about() {
        let routes = Routes::new(
            &[
                dest("segment", DestConfig::console(""), &["*"]),
                dest("slack", DestConfig::console(""), &["events.*"]),
            ],
            None,
            Duration::from_secs(1),
        );
        let about_segment = alert::event("segment", 2, "HTTP 401");
        assert_eq!(names(routes.of(&about_segment)), ["slack"]);
        let about_slack = alert::event("slack", 1, "HTTP 404");
        assert_eq!(names(routes.of(&about_slack)), ["segment"]);
        // Only alerts are narrowed: any other event with a `dest` field is not.
        let mut other = Event::new("user.signup", Default::default());
        other.payload.insert("dest".into(), "segment".into());
        assert_eq!(names(routes.of(&other)), ["segment"]);
    }

    #[test]
    fn only_and_to_resolve_names_with_one_error() {
        let routes = routes();
        let ids = routes
            .resolve("--only", &["audit".into(), "slack".into()])
            .unwrap();
        assert_eq!(
            names(ids.iter().map(|&id| routes.get(id))),
            ["audit", "slack"]
        );
        for flag in ["--only", "--to"] {
            let err = routes
                .resolve(flag, &["slack".into(), "nope".into()])
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("{flag} nope: no such destination (configured: slack, console, audit)")
            );
        }
        assert_eq!(routes.resolve("--only", &[]).unwrap(), []);
    }

    #[test]
    fn narrowing_keeps_routing_and_renumbers() {
        let routes = routes();
        let ids = routes.resolve("--to", &["audit".into()]).unwrap();
        let audit = routes.only(&ids);
        assert_eq!(audit.len(), 1);
        assert_eq!(names(audit.of(&event("import.completed"))), ["audit"]);
        assert_eq!(names(audit.of(&event("user.signup"))), Vec::<&str>::new());
        let only = audit.named("audit").unwrap();
        assert_eq!(audit.get(only.id()).name(), "audit");
    }

    #[test]
    fn slack_is_limited_to_one_message_a_second_unless_its_rate_says_otherwise() {
        let routes = routes();
        let one_a_second = Rate::parse("1/s").unwrap();
        assert_eq!(routes.named("slack").unwrap().rate(), Some(one_a_second));
        assert_eq!(routes.named("console").unwrap().rate(), None);
        let mut slow = dest("slow", DestConfig::console(""), &["*"]);
        slow.rate = RateSetting::Limit(Rate::parse("30/m").unwrap());
        let url = crate::secret::Secret::new("https://hooks.example/x");
        let mut free = dest("free", DestConfig::slack("", url), &["*"]);
        free.rate = RateSetting::Unlimited;
        let routes = Routes::new(&[slow, free], None, Duration::from_secs(1));
        assert_eq!(
            routes.named("slow").unwrap().rate(),
            Some(Rate::parse("30/m").unwrap())
        );
        assert_eq!(routes.named("free").unwrap().rate(), None);
    }

    #[test]
    fn a_reload_keeps_ids_by_name_and_retires_what_it_removed() {
        let before = routes();
        let slack_id = before.named("slack").unwrap().id();
        let audit_id = before.named("audit").unwrap().id();
        let after = before.reloaded(
            &[
                dest("new", DestConfig::console(""), &["*"]),
                dest("slack", DestConfig::console(""), &["billing.*"]),
                dest("console", DestConfig::console(""), &["*"]),
            ],
            Some(3),
            Duration::from_secs(1),
        );
        let slack = after.named("slack").unwrap();
        assert_eq!(slack.id(), slack_id, "kept by name");
        assert_eq!(
            (slack.kind().name(), slack.policy().max_attempts),
            ("console", 3)
        );
        assert_eq!(names(after.iter()), ["slack", "console", "new"]);
        assert!(after.named("audit").is_none(), "retired");
        assert_eq!(after.get(audit_id).name(), "audit", "its id still names it");
        assert_eq!(
            names(after.of(&event("import.completed"))),
            ["console", "new"]
        );
        assert_eq!(
            names(after.of(&event("billing.failed"))),
            ["slack", "console", "new"]
        );
        // Put back, it takes its old id again.
        let back = after.reloaded(
            &[dest("audit", DestConfig::console(""), &["*"])],
            None,
            Duration::from_secs(1),
        );
        assert_eq!(back.named("audit").unwrap().id(), audit_id);
        assert_eq!(names(back.iter()), ["audit"]);
    }

    #[test]
    fn each_route_carries_its_retry_policy() {
        let routes = routes();
        assert_eq!(routes.named("slack").unwrap().policy().max_attempts, 5);
        assert_eq!(routes.named("console").unwrap().policy().max_attempts, 10);
        let capped = Routes::new(
            &[dest("console", DestConfig::console(""), &["*"])],
            Some(3),
            Duration::from_millis(10),
        );
        let policy = capped.named("console").unwrap().policy();
        assert_eq!(
            (policy.max_attempts, policy.base),
            (3, Duration::from_millis(10))
        );
    }
}
