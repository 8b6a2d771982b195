//! Parsing of time arguments shared by the CLI and the HTTP API.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};

/// Parses a time given as RFC 3339 (`2015-01-07T11:00:00Z`), a date (`2015-01-07`, midnight
/// UTC) or Unix seconds (`1420628400`).
pub fn parse_time_arg(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight exists")));
    }
    if let Ok(secs) = text.parse::<i64>() {
        if let Some(t) = Utc.timestamp_opt(secs, 0).single() {
            return Ok(t);
        }
    }
    Err(format!("{text:?} is not a time: use RFC 3339 (2015-01-07T11:00:00Z), a date (2015-01-07) or Unix seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        let expected = "2015-01-07T00:00:00+00:00";
        assert_eq!(parse_time_arg("2015-01-07").unwrap().to_rfc3339(), expected);
        assert_eq!(
            parse_time_arg("2015-01-07T01:00:00+01:00")
                .unwrap()
                .to_rfc3339(),
            expected
        );
        assert_eq!(parse_time_arg("1420588800").unwrap().to_rfc3339(), expected);
        assert!(parse_time_arg("last tuesday")
            .unwrap_err()
            .contains("RFC 3339"));
    }
}
