//! Arbitrary-precision numbers, as cty has them.
//!
//! Terraform's numbers are big floats. On the wire they arrive as msgpack integers, float64s,
//! or decimal strings (for values neither can hold exactly, such as `0.1` written in HCL or
//! integers past 64 bits). Converting those strings to `f64` would change the value, and a
//! planned value that differs from configuration by one ulp fails Terraform's consistency
//! checks, so numbers are kept as canonical decimal text and compared exactly.

use std::fmt;

/// The most digits an exponent may move the decimal point. Far beyond any real attribute, and
/// it keeps a hostile `1e999999999` from allocating gigabytes.
const MAX_EXPONENT: i64 = 100_000;

/// An exact decimal number.
///
/// Stored canonically (no exponent, no leading zeros in the integer part, no trailing zeros in
/// the fraction, no negative zero), so equal numbers compare equal whatever encoding they came
/// from: `1`, `1.0`, `1e0` and msgpack float `1.0` are one number.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Number {
    text: String,
}

/// Why a string is not a number.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{text:?} is not a decimal number")]
pub struct InvalidNumber {
    text: String,
}

impl Number {
    /// Parses a decimal literal: optional sign, digits, optional fraction, optional exponent.
    pub fn parse(text: &str) -> Result<Self, InvalidNumber> {
        parse_decimal(text).ok_or_else(|| InvalidNumber {
            text: text.to_owned(),
        })
    }

    /// The exact value of a finite `f64` (all of its binary digits, in decimal). `None` for NaN
    /// and infinities, which Terraform's number type cannot hold in state.
    pub fn from_f64(value: f64) -> Option<Self> {
        if !value.is_finite() {
            return None;
        }
        // Rust's fixed-precision formatting is exact; 1074 fractional digits cover the
        // smallest subnormal.
        parse_decimal(&format!("{value:.1074}"))
    }

    /// The canonical decimal text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether there is no fractional part.
    pub fn is_integer(&self) -> bool {
        !self.text.contains('.')
    }

    /// The value as `i64` when it is an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        if self.is_integer() {
            self.text.parse().ok()
        } else {
            None
        }
    }

    /// The value as `u64` when it is a non-negative integer in range.
    pub fn as_u64(&self) -> Option<u64> {
        if self.is_integer() {
            self.text.parse().ok()
        } else {
            None
        }
    }

    /// The nearest `f64` (exact when the number is one).
    pub fn as_f64(&self) -> f64 {
        self.text.parse().unwrap_or(f64::NAN)
    }

    /// The value as `f64` only when no precision is lost, which decides how msgpack carries
    /// it (the same rule as go-cty: integer, else exact float64, else decimal string).
    pub fn as_exact_f64(&self) -> Option<f64> {
        let float = self.as_f64();
        (Self::from_f64(float).as_ref() == Some(self)).then_some(float)
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<i64> for Number {
    fn from(value: i64) -> Self {
        Self {
            text: value.to_string(),
        }
    }
}

impl From<u64> for Number {
    fn from(value: u64) -> Self {
        Self {
            text: value.to_string(),
        }
    }
}

impl From<i32> for Number {
    fn from(value: i32) -> Self {
        Self::from(i64::from(value))
    }
}

impl From<u32> for Number {
    fn from(value: u32) -> Self {
        Self::from(u64::from(value))
    }
}

impl std::str::FromStr for Number {
    type Err = InvalidNumber;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// Parses and canonicalises a decimal literal.
fn parse_decimal(text: &str) -> Option<Number> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    if !(-MAX_EXPONENT..=MAX_EXPONENT).contains(&exponent) {
        return None;
    }
    let (integer, fraction) = match mantissa.split_once('.') {
        Some((integer, fraction)) => (integer, fraction),
        None => (mantissa, ""),
    };
    if integer.is_empty() && fraction.is_empty() {
        return None;
    }
    if !integer
        .bytes()
        .chain(fraction.bytes())
        .all(|byte| byte.is_ascii_digit())
    {
        return None;
    }
    // All digits, and where the decimal point sits among them.
    let digits: Vec<u8> = integer.bytes().chain(fraction.bytes()).collect();
    let point = i64::try_from(integer.len()).ok()? + exponent;
    let (whole, frac): (String, String) = if point <= 0 {
        let zeros = "0".repeat(usize::try_from(-point).ok()?);
        (String::new(), zeros + std::str::from_utf8(&digits).ok()?)
    } else {
        let point = usize::try_from(point).ok()?;
        if point >= digits.len() {
            let mut whole = String::from_utf8(digits).ok()?;
            whole.push_str(&"0".repeat(point - whole.len()));
            (whole, String::new())
        } else {
            (
                String::from_utf8(digits[..point].to_vec()).ok()?,
                String::from_utf8(digits[point..].to_vec()).ok()?,
            )
        }
    };
    let whole = whole.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let mut canonical = String::with_capacity(whole.len() + frac.len() + 3);
    if negative && !(whole.is_empty() && frac.is_empty()) {
        canonical.push('-');
    }
    canonical.push_str(if whole.is_empty() { "0" } else { whole });
    if !frac.is_empty() {
        canonical.push('.');
        canonical.push_str(frac);
    }
    Some(Number { text: canonical })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        for (input, canonical) in [
            ("0", "0"),
            ("-0.0", "0"),
            ("007", "7"),
            ("1.500", "1.5"),
            ("1e3", "1000"),
            ("1.25E-2", "0.0125"),
            ("-12.5e1", "-125"),
            (".5", "0.5"),
            (
                "123456789012345678901234567890.125",
                "123456789012345678901234567890.125",
            ),
        ] {
            assert_eq!(Number::parse(input).unwrap().as_str(), canonical, "{input}");
        }
        for bad in ["", "-", "1.2.3", "abc", "1e", "0x10", "1e999999999"] {
            assert!(Number::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn floats_are_exact() {
        assert_eq!(Number::from_f64(0.5).unwrap().as_str(), "0.5");
        assert_eq!(Number::from_f64(1.0).unwrap().as_str(), "1");
        assert!(
            Number::from_f64(0.1)
                .unwrap()
                .as_str()
                .starts_with("0.1000000000000000055511")
        );
        assert_eq!(Number::parse("0.5").unwrap().as_exact_f64(), Some(0.5));
        assert_eq!(Number::parse("0.1").unwrap().as_exact_f64(), None);
        assert!(Number::from_f64(f64::NAN).is_none());
    }

    #[test]
    fn integer_views() {
        let big = Number::parse("18446744073709551616").unwrap();
        assert_eq!(big.as_u64(), None);
        assert_eq!(Number::from(u64::MAX).as_u64(), Some(u64::MAX));
        assert_eq!(Number::from(-3_i64).as_i64(), Some(-3));
        assert_eq!(Number::parse("2.5").unwrap().as_i64(), None);
    }
}
