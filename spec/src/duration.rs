//! Durations written the way Terraform users write them: Go's `time.ParseDuration` syntax
//! (`"500ms"`, `"30s"`, `"5m"`, `"1h30m"`), which is what `timeouts` blocks use too.

use std::time::Duration;

const UNITS: [(&str, u128); 7] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses a Go duration string. Negative durations and bare numbers (other than `0`) are
/// refused, since every duration in a spec is a positive interval.
pub fn parse(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!(
            "{text:?} is not a duration; write a number followed by a unit (ns, us, ms, s, m, h), e.g. \"500ms\", \"30s\", \"5m\", \"1h30m\""
        )
    };
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(invalid());
    }
    let mut rest = text;
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        if number_len == 0 {
            return Err(invalid());
        }
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after_unit) = after.split_at(unit_len);
        let scale = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, scale)| *scale)
            .ok_or_else(invalid)?;
        total_nanos = total_nanos
            .checked_add(scaled(number, scale).ok_or_else(invalid)?)
            .ok_or_else(invalid)?;
        rest = after_unit;
    }
    let nanos = u64::try_from(total_nanos).map_err(|_| invalid())?;
    Ok(Duration::from_nanos(nanos))
}

/// `number` (digits with an optional fraction) times `scale` nanoseconds, truncated.
fn scaled(number: &str, scale: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos = whole.checked_mul(scale)?;
    let mut place = scale;
    for digit in fraction.chars() {
        place /= 10;
        nanos += u128::from(digit.to_digit(10)?) * place;
    }
    Some(nanos)
}

/// Formats a duration in the same syntax, the shortest exact form (`90s` → `"1m30s"`).
pub fn format(duration: Duration) -> String {
    let mut nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, scale) in [
        ("h", 3_600_000_000_000u128),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ] {
        if nanos >= scale {
            out.push_str(&format!("{}{unit}", nanos / scale));
            nanos %= scale;
        }
    }
    out
}

/// A rule for a duration field: parses it and checks it lies in `min..=max`.
pub fn between(text: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let value = parse(text)?;
    if value < min || value > max {
        return Err(format!(
            "{text:?} is out of range; allowed: {} to {}",
            format(min),
            format(max)
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert_eq!(parse("2us").unwrap(), Duration::from_micros(2));
    }

    #[test]
    fn refuses_what_go_refuses() {
        for bad in ["", "5", "5 s", "s", "-1s", "1d", "1.s.", "1sm", "."] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(parse("10x").unwrap_err().contains("e.g. \"500ms\""));
    }

    #[test]
    fn formats_shortest_form() {
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(format(Duration::ZERO), "0s");
        assert_eq!(
            parse(&format(Duration::from_nanos(3_723_000_000_123))).unwrap(),
            Duration::from_nanos(3_723_000_000_123)
        );
    }

    #[test]
    fn range_message_names_bounds() {
        let err = between("2h", Duration::from_millis(100), Duration::from_secs(3600)).unwrap_err();
        assert_eq!(err, "\"2h\" is out of range; allowed: 100ms to 1h");
    }
}
