//! Byte sizes written as `"32MiB"`, `"128MB"`, `"1GiB"`.

/// Parses a byte size: a whole number followed by `B`, `KB`, `MB`, `GB` (powers of 1000) or
/// `KiB`, `MiB`, `GiB` (powers of 1024).
pub fn parse(text: &str) -> Result<u64, String> {
    let invalid = || {
        format!(
            "{text:?} is not a size; write a whole number and a unit (B, KB, MB, GB, KiB, MiB, GiB), e.g. \"32MiB\""
        )
    };
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(invalid)?;
    if digits == 0 {
        return Err(invalid());
    }
    let number: u64 = text[..digits].parse().map_err(|_| invalid())?;
    let scale: u64 = match &text[digits..] {
        "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(invalid()),
    };
    number.checked_mul(scale).ok_or_else(invalid)
}

/// A rule for a size field: parses it and checks it lies in `min..=max` bytes.
pub fn between(text: &str, min: u64, max: u64) -> Result<u64, String> {
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

/// Formats a size in the largest binary unit that divides it exactly.
pub fn format(bytes: u64) -> String {
    for (unit, scale) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= scale && bytes.is_multiple_of(scale) {
            return format!("{}{unit}", bytes / scale);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimal_and_binary_units() {
        assert_eq!(parse("32MiB").unwrap(), 32 << 20);
        assert_eq!(parse("128MB").unwrap(), 128_000_000);
        assert_eq!(parse("7B").unwrap(), 7);
        for bad in ["", "MB", "1.5MB", "12", "12 MB", "3TB", "-1MB"] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn checks_range() {
        assert!(
            between("512KiB", 1 << 20, 1 << 30)
                .unwrap_err()
                .contains("allowed: 1MiB to 1GiB")
        );
    }
}
