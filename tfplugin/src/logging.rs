//! Logs as hclog-style JSON lines on stderr, the format Terraform parses from providers.
//!
//! Each line has `@level` (trace/debug/info/warn/error), `@message`, `@timestamp` (RFC 3339
//! with microseconds), `@module` (`provider`), then the fields of enclosing spans and of the
//! event. Terraform shows them under `TF_LOG`/`TF_LOG_PROVIDER`.
//!
//! The level follows Terraform's own SDK (terraform-plugin-log): `TF_LOG_PROVIDER`, else
//! `TF_LOG`; a level name (any case) selects it, `OFF` or unset disables logging (Terraform
//! drops provider logs then anyway, so writing them would only cost time), and any other
//! value (such as `JSON` or `1`) means TRACE, as Terraform treats it.
//!
//! The transport crates underneath (h2, hyper, tonic, tower, rustls, and anything logging
//! through the `log` crate) are held at WARN whatever the level: at DEBUG they write a line
//! per HTTP/2 frame, which would bury the provider's own messages.

use std::io::Write as _;

use serde_json::{Map, Value as Json};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The level selected by `TF_LOG_PROVIDER`, else `TF_LOG` (see the module docs).
pub fn level_from_env() -> LevelFilter {
    let setting = ["TF_LOG_PROVIDER", "TF_LOG"].iter().find_map(|name| {
        std::env::var(name)
            .ok()
            .filter(|value| !value.trim().is_empty())
    });
    level_from_setting(setting.as_deref())
}

fn level_from_setting(setting: Option<&str>) -> LevelFilter {
    match setting
        .map(|value| value.trim().to_ascii_uppercase())
        .as_deref()
    {
        None | Some("OFF") => LevelFilter::OFF,
        Some("ERROR") => LevelFilter::ERROR,
        Some("WARN") => LevelFilter::WARN,
        Some("INFO") => LevelFilter::INFO,
        Some("DEBUG") => LevelFilter::DEBUG,
        Some(_) => LevelFilter::TRACE,
    }
}

/// Installs the hclog JSON logger at the level from the environment, as the global
/// `tracing` subscriber. Does nothing if a subscriber is already installed (e.g. by a test).
pub fn init() {
    let _ = tracing_subscriber::registry()
        .with(HclogLayer.with_filter(filter(level_from_env())))
        .try_init();
}

/// Crates whose logs describe transport mechanics rather than provider behaviour.
const TRANSPORT_TARGETS: &[&str] = &[
    "h2",
    "hyper",
    "hyper_util",
    "tonic",
    "tower",
    "rustls",
    "tokio_rustls",
    "log",
];

/// `level` for everything, at most WARN for the transport crates.
fn filter(level: LevelFilter) -> Targets {
    let transport = level.min(LevelFilter::WARN);
    TRANSPORT_TARGETS
        .iter()
        .fold(Targets::new().with_default(level), |targets, target| {
            targets.with_target(*target, transport)
        })
}

/// A `tracing` layer writing hclog JSON lines to stderr; [`init`] installs it, and providers
/// that build their own subscriber can stack it.
pub struct HclogLayer;

/// Span fields, kept in the span's extensions until its events are written.
struct SpanFields(Map<String, Json>);

struct JsonVisitor<'a>(&'a mut Map<String, Json>);

impl Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Json::from(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Json::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Json::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Json::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Json::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Json::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().to_owned(), Json::from(value.to_string()));
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// The timestamp format hclog writes: RFC 3339 with microseconds.
fn timestamp() -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_default()
}

/// Renders one event as an hclog JSON line (without the newline).
fn render(
    level: &Level,
    target: &str,
    span_fields: Map<String, Json>,
    event_fields: Map<String, Json>,
) -> String {
    let mut line = Map::new();
    line.insert("@level".into(), Json::from(level_name(level)));
    let mut fields = span_fields;
    fields.extend(event_fields);
    let message = fields.remove("message").unwrap_or(Json::from(""));
    line.insert("@message".into(), message);
    line.insert("@module".into(), Json::from("provider"));
    line.insert("@timestamp".into(), Json::from(timestamp()));
    line.insert("target".into(), Json::from(target));
    for (name, value) in fields {
        line.entry(name).or_insert(value);
    }
    Json::Object(line).to_string()
}

impl<S> Layer<S> for HclogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attributes: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        context: Context<'_, S>,
    ) {
        if let Some(span) = context.span(id) {
            let mut fields = Map::new();
            attributes.record(&mut JsonVisitor(&mut fields));
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        context: Context<'_, S>,
    ) {
        if let Some(span) = context.span(id)
            && let Some(SpanFields(fields)) = span.extensions_mut().get_mut::<SpanFields>()
        {
            values.record(&mut JsonVisitor(fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, context: Context<'_, S>) {
        let mut span_fields = Map::new();
        if let Some(scope) = context.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>() {
                    span_fields.extend(fields.clone());
                }
            }
        }
        let mut event_fields = Map::new();
        event.record(&mut JsonVisitor(&mut event_fields));
        let metadata = event.metadata();
        let line = render(
            metadata.level(),
            metadata.target(),
            span_fields,
            event_fields,
        );
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_terraform() {
        assert_eq!(level_from_setting(None), LevelFilter::OFF);
        assert_eq!(level_from_setting(Some("off")), LevelFilter::OFF);
        assert_eq!(level_from_setting(Some("debug")), LevelFilter::DEBUG);
        assert_eq!(level_from_setting(Some("WARN")), LevelFilter::WARN);
        assert_eq!(level_from_setting(Some("JSON")), LevelFilter::TRACE);
    }

    #[test]
    fn transport_crates_stay_quiet() {
        let targets = filter(LevelFilter::DEBUG);
        assert!(targets.would_enable("terraform_provider_streaming::runner", &Level::DEBUG));
        assert!(!targets.would_enable("h2::codec", &Level::DEBUG));
        assert!(targets.would_enable("h2::codec", &Level::WARN));
        assert!(!filter(LevelFilter::OFF).would_enable("h2", &Level::ERROR));
    }

    #[test]
    fn lines_are_hclog_json() {
        let mut span = Map::new();
        span.insert("rpc".into(), Json::from("PlanResourceChange"));
        let mut event = Map::new();
        event.insert("message".into(), Json::from("planned"));
        event.insert("changes".into(), Json::from(2));
        let line: Json =
            serde_json::from_str(&render(&Level::WARN, "tfplugin::server", span, event)).unwrap();
        assert_eq!(line["@level"], "warn");
        assert_eq!(line["@message"], "planned");
        assert_eq!(line["@module"], "provider");
        assert_eq!(line["rpc"], "PlanResourceChange");
        assert_eq!(line["changes"], 2);
        let timestamp = line["@timestamp"].as_str().unwrap();
        assert!(
            time::OffsetDateTime::parse(timestamp, &time::format_description::well_known::Rfc3339)
                .is_ok()
        );
        assert!(timestamp.contains('.'));
    }
}
