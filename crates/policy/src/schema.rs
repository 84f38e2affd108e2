//! `policy schema`: a JSON Schema (draft 2020-12) of the policy format, for editors and CI.
//! It describes the file's shape; `policy lint` remains the full check (globs, hosts, CIDRs,
//! duplicate ids and the like are validated by the parser, not by the schema).

/// The JSON Schema of policy files, as JSON text.
pub fn policy_schema() -> &'static str {
    include_str!("../schema/policy.schema.json")
}

#[cfg(test)]
mod tests {
    use super::policy_schema;

    #[test]
    fn schema_is_json_with_the_top_level_keys() {
        let schema: serde_json::Value = serde_json::from_str(policy_schema()).unwrap();
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["required"], serde_json::json!(["version"]));
        let properties = schema["properties"].as_object().unwrap();
        for key in [
            "version",
            "name",
            "mode",
            "on_deny",
            "deterministic",
            "budgets",
            "filesystem",
            "network",
            "stdio",
            "env",
            "limits",
        ] {
            assert!(properties.contains_key(key), "{key}");
        }
    }
}
