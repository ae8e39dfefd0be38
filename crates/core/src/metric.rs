//! The metric catalogue: every metric a threshold rule can watch, with its unit, its kind,
//! and who measures it. Config validation, the rule engines and the exporters all read it,
//! so a metric is named once (docs/monitoring.md describes each).

use crate::AgentId;

/// What a metric counts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Seconds.
    Seconds,
    /// A fraction, 0..1 (a drawdown, a CPU share).
    Ratio,
    /// Bytes.
    Bytes,
    /// 1 when true, 0 when false.
    Boolean,
    /// Messages waiting.
    Messages,
    /// A plain number (a deviation in standard units).
    Number,
}

/// How a metric moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// A value that goes up and down.
    Gauge,
    /// A count that only goes up.
    Counter,
}

macro_rules! catalogue {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, $unit:ident, $kind:ident, $by:ident, $series:expr; )*) => {
        /// A metric a threshold rule can watch.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum RuleMetric {
            $( $(#[$doc])* $variant, )*
        }

        impl RuleMetric {
            /// Every rule metric, in the catalogue's order.
            pub const ALL: &'static [RuleMetric] = &[$(RuleMetric::$variant),*];

            /// Returns its name in rules (`[[monitor.rules]] metric = "…"`).
            pub const fn name(self) -> &'static str {
                match self { $(RuleMetric::$variant => $name,)* }
            }

            /// Returns its unit.
            pub fn unit(self) -> Unit {
                match self { $(RuleMetric::$variant => Unit::$unit,)* }
            }

            /// Returns its kind.
            pub fn kind(self) -> MetricKind {
                match self { $(RuleMetric::$variant => MetricKind::$kind,)* }
            }

            /// Returns the agent that measures it and evaluates its rules.
            pub fn measured_by(self) -> AgentId {
                match self { $(RuleMetric::$variant => AgentId::$by,)* }
            }

            /// Returns the Prometheus series `/metrics` exports it as, if it is exported.
            pub const fn series(self) -> Option<&'static str> {
                match self { $(RuleMetric::$variant => $series,)* }
            }
        }
    };
}

catalogue! {
    /// Round trip to an endpoint (the broker, the feed).
    NetworkLatency => "network_latency_seconds", Seconds, Gauge, Monitor, Some("vigil_network_latency_seconds");
    /// The host's CPU in use.
    CpuUsage => "cpu_usage_ratio", Ratio, Gauge, Monitor, Some("vigil_system_cpu_usage_ratio");
    /// The host's memory in use.
    MemoryUsage => "memory_usage_ratio", Ratio, Gauge, Monitor, Some("vigil_system_memory_usage_ratio");
    /// Free space on the log's disk.
    DiskFree => "disk_free_bytes", Bytes, Gauge, Monitor, Some("vigil_system_disk_free_bytes");
    /// Whether the data source is connected.
    DataSourceConnected => "data_source_connected", Boolean, Gauge, Monitor, None;
    /// Time since the last bar, in market hours.
    DataStaleness => "data_staleness_seconds", Seconds, Gauge, Monitor, None;
    /// Share of successful calls to an API over the window.
    ApiSuccess => "api_success_ratio", Ratio, Gauge, Monitor, Some("vigil_api_success_ratio");
    /// Messages waiting in an agent's mailbox.
    AgentBacklog => "agent_backlog_messages", Messages, Gauge, Monitor, Some("vigil_agent_backlog_messages");
    /// Time an agent takes to answer a ping.
    AgentResponseLatency => "agent_response_latency_seconds", Seconds, Gauge, Monitor, Some("vigil_agent_response_latency_seconds");
    /// Loss from the day's peak equity.
    DailyDrawdown => "daily_drawdown_ratio", Ratio, Gauge, Execution, Some("vigil_business_daily_drawdown_ratio");
    /// Loss from the week's peak equity.
    WeeklyDrawdown => "weekly_drawdown_ratio", Ratio, Gauge, Execution, Some("vigil_business_weekly_drawdown_ratio");
    /// One trade's value against equity.
    TradeExposure => "trade_exposure_ratio", Ratio, Gauge, Execution, Some("vigil_business_trade_exposure_max_ratio");
    /// Today's trade count against the recent daily mean, in standard deviations.
    TradeFrequencyDeviation => "trade_frequency_deviation", Number, Gauge, Execution, None;
}

impl RuleMetric {
    /// Finds a rule metric by its name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|m| m.name() == name)
    }

    /// Returns the names of the metrics `agent` measures, in the catalogue's order.
    pub fn names_measured_by(agent: AgentId) -> Vec<&'static str> {
        Self::ALL
            .iter()
            .filter(|m| m.measured_by() == agent)
            .map(|m| m.name())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_unique_and_found_back() {
        for m in RuleMetric::ALL {
            assert_eq!(RuleMetric::from_name(m.name()), Some(*m));
            if let Some(series) = m.series() {
                assert!(series.starts_with("vigil_"), "{series}");
            }
        }
        let mut names: Vec<_> = RuleMetric::ALL.iter().map(|m| m.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), RuleMetric::ALL.len());
        assert_eq!(RuleMetric::from_name("cpu"), None);
    }

    #[test]
    fn a_names_suffix_says_its_unit() {
        for m in RuleMetric::ALL {
            let suffix = match m.unit() {
                Unit::Seconds => "_seconds",
                Unit::Ratio => "_ratio",
                Unit::Bytes => "_bytes",
                Unit::Messages => "_messages",
                Unit::Boolean => "_connected",
                Unit::Number => "_deviation",
            };
            assert!(
                m.name().ends_with(suffix),
                "{} is in {:?}",
                m.name(),
                m.unit()
            );
        }
    }

    #[test]
    fn the_monitor_and_the_execution_agent_share_the_catalogue() {
        assert_eq!(RuleMetric::names_measured_by(AgentId::Monitor).len(), 9);
        assert_eq!(
            RuleMetric::names_measured_by(AgentId::Execution),
            [
                "daily_drawdown_ratio",
                "weekly_drawdown_ratio",
                "trade_exposure_ratio",
                "trade_frequency_deviation"
            ]
        );
    }
}
