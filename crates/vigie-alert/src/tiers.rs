//! How narrative severities map to alert severities (`[alert.tiers]`).

use serde::{Deserialize, Serialize};
use vigie_domain::alert::AlertSeverity;
use vigie_domain::Severity;

/// `[alert.tiers]`: the least narrative severity for each alert severity. A narrative
/// below `info` that still matches a rule alerts as `info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeverityTiers {
    /// Least narrative severity for a `critical` alert.
    pub critical: Severity,
    /// Least narrative severity for a `warning` alert.
    pub warning: Severity,
    /// Least narrative severity for an `info` alert.
    pub info: Severity,
}

impl Default for SeverityTiers {
    fn default() -> Self {
        SeverityTiers {
            critical: Severity::Critical,
            warning: Severity::High,
            info: Severity::Medium,
        }
    }
}

impl SeverityTiers {
    /// Returns the alert severity of a narrative severity.
    pub fn tier(&self, severity: Severity) -> AlertSeverity {
        if severity >= self.critical {
            AlertSeverity::Critical
        } else if severity >= self.warning {
            AlertSeverity::Warning
        } else {
            AlertSeverity::Info
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_map_narrative_severities() {
        let tiers = SeverityTiers::default();
        assert_eq!(tiers.tier(Severity::Critical), AlertSeverity::Critical);
        assert_eq!(tiers.tier(Severity::High), AlertSeverity::Warning);
        assert_eq!(tiers.tier(Severity::Medium), AlertSeverity::Info);
        assert_eq!(tiers.tier(Severity::Low), AlertSeverity::Info);
    }
}
