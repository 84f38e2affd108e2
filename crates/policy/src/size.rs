//! Sizes in policies: plain integers (`50_000_000`) or a number with a binary unit (`64KiB`).

/// Parses a size written as digits (underscores allowed between them) with an optional unit
/// `B`, `KiB`, `MiB`, `GiB` or `TiB`. Returns a hint-friendly message on failure.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let unit = unit.trim();
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return Err(format!("`{text}` is not a size"));
    }
    let number: u64 = digits
        .replace('_', "")
        .parse()
        .map_err(|_| format!("`{text}` is too large"))?;
    let multiplier: u64 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "kB" | "MB" | "GB" | "TB" | "K" | "M" | "G" | "k" | "kb" | "mb" | "gb" => {
            return Err(format!(
                "unit `{unit}` is ambiguous: write binary units (`KiB`, `MiB`, `GiB`)"
            ))
        }
        other => return Err(format!("unknown unit `{other}`")),
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("`{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_with_units_and_underscores() {
        assert_eq!(parse_size("64KiB"), Ok(64 * 1024));
        assert_eq!(parse_size("64MiB"), Ok(64 * 1024 * 1024));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1_000_000"), Ok(1_000_000));
        assert_eq!(parse_size("12 B"), Ok(12));
        assert_eq!(parse_size("0"), Ok(0));
    }

    #[test]
    fn bad_sizes_are_refused() {
        for bad in [
            "",
            "MiB",
            "_1",
            "1_",
            "1__0",
            "64MB",
            "12 parsecs",
            "-1",
            "1.5GiB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("20000000TiB").is_err());
    }
}
