//! Static implementation limits, checked with `wasmparser` on the module's bytes before
//! Cranelift sees them: a small module can still make the compiler use gigabytes or run for
//! minutes (hundreds of thousands of functions, tens of thousands of locals, deep nesting, a
//! huge element segment). The numbers are modelled on the limits browsers publish (the
//! WebAssembly JS API's implementation limits, as V8 and SpiderMonkey enforce them), tighter
//! where a sandboxed plugin has no need for more. They are constants of the runtime, not
//! policy settings.

use wasmparser::{ElementItems, Imports, Operator, Parser, Payload};

/// One static limit: its name as error messages give it, and the most a module may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModuleLimit {
    /// The limit's name, e.g. `functions`.
    pub name: &'static str,
    /// The most a module may have.
    pub max: u64,
}

/// Functions, imported and defined (browsers: 1,000,000).
pub const MAX_FUNCTIONS: ModuleLimit = ModuleLimit {
    name: "functions",
    max: 100_000,
};
/// Locals of one function, parameters excluded (browsers: 50,000).
pub const MAX_LOCALS: ModuleLimit = ModuleLimit {
    name: "locals_per_function",
    max: 10_000,
};
/// Bytes of one function body (browsers: 7,654,321).
pub const MAX_BODY_BYTES: ModuleLimit = ModuleLimit {
    name: "function_body_bytes",
    max: 1 << 20,
};
/// Blocks, loops, ifs and trys open at once in one function (browsers publish none; the
/// validator's own stack bound is far higher).
pub const MAX_NESTING: ModuleLimit = ModuleLimit {
    name: "nesting_depth",
    max: 1_000,
};
/// Element segments (browsers: 10,000,000 table entries; the count of segments is bounded
/// by it).
pub const MAX_ELEMENT_SEGMENTS: ModuleLimit = ModuleLimit {
    name: "element_segments",
    max: 10_000,
};
/// Entries across all element segments (browsers: 10,000,000 table entries).
pub const MAX_ELEMENT_ENTRIES: ModuleLimit = ModuleLimit {
    name: "element_entries",
    max: 100_000,
};
/// Data segments (browsers: 100,000).
pub const MAX_DATA_SEGMENTS: ModuleLimit = ModuleLimit {
    name: "data_segments",
    max: 10_000,
};
/// Types (browsers: 1,000,000).
pub const MAX_TYPES: ModuleLimit = ModuleLimit {
    name: "types",
    max: 10_000,
};
/// Imports (browsers: 100,000); every one must be a host function anyway.
pub const MAX_IMPORTS: ModuleLimit = ModuleLimit {
    name: "imports",
    max: 1_000,
};
/// Exports (browsers: 100,000).
pub const MAX_EXPORTS: ModuleLimit = ModuleLimit {
    name: "exports",
    max: 10_000,
};
/// Globals (browsers: 1,000,000).
pub const MAX_GLOBALS: ModuleLimit = ModuleLimit {
    name: "globals",
    max: 10_000,
};

/// Every static limit, for documentation and tests.
pub const ALL: &[ModuleLimit] = &[
    MAX_FUNCTIONS,
    MAX_LOCALS,
    MAX_BODY_BYTES,
    MAX_NESTING,
    MAX_ELEMENT_SEGMENTS,
    MAX_ELEMENT_ENTRIES,
    MAX_DATA_SEGMENTS,
    MAX_TYPES,
    MAX_IMPORTS,
    MAX_EXPORTS,
    MAX_GLOBALS,
];

/// A module over a static limit: which, and how much it has (at least).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverLimit {
    /// The limit it is over.
    pub limit: ModuleLimit,
    /// What the module has (counting stops soon after the limit).
    pub found: u64,
}

fn over(limit: ModuleLimit, found: u64) -> Result<(), OverLimit> {
    if found > limit.max {
        Err(OverLimit { limit, found })
    } else {
        Ok(())
    }
}

/// Checks a module binary against every static limit. Bytes the parser cannot read are left
/// to the compiler, whose error names what is wrong; only a module that parses far enough to
/// be over a limit is refused here.
pub fn check(binary: &[u8]) -> Result<(), OverLimit> {
    let mut functions = 0u64;
    let mut element_entries = 0u64;
    for payload in Parser::new(0).parse_all(binary) {
        let Ok(payload) = payload else {
            return Ok(());
        };
        match payload {
            Payload::TypeSection(reader) => {
                let mut types = 0u64;
                for group in reader {
                    let Ok(group) = group else { return Ok(()) };
                    types += group.types().len() as u64;
                    over(MAX_TYPES, types)?;
                }
            }
            Payload::ImportSection(reader) => {
                let mut imports = 0u64;
                for group in reader {
                    let Ok(group) = group else { return Ok(()) };
                    let (n, funcs) = match group {
                        Imports::Single(_, import) => (1, func_import(&import.ty)),
                        Imports::Compact1 { items, .. } => {
                            let n = u64::from(items.count());
                            let funcs = items
                                .into_iter()
                                .take(n as usize)
                                .filter(|i| i.as_ref().is_ok_and(|i| func_import(&i.ty) == 1))
                                .count() as u64;
                            (n, funcs)
                        }
                        Imports::Compact2 { ty, names, .. } => {
                            let n = u64::from(names.count());
                            (n, n * func_import(&ty))
                        }
                    };
                    imports += n;
                    functions += funcs;
                    over(MAX_IMPORTS, imports)?;
                }
            }
            Payload::FunctionSection(reader) => {
                functions += u64::from(reader.count());
                over(MAX_FUNCTIONS, functions)?;
            }
            Payload::GlobalSection(reader) => over(MAX_GLOBALS, u64::from(reader.count()))?,
            Payload::ExportSection(reader) => over(MAX_EXPORTS, u64::from(reader.count()))?,
            Payload::ElementSection(reader) => {
                over(MAX_ELEMENT_SEGMENTS, u64::from(reader.count()))?;
                for element in reader {
                    let Ok(element) = element else { return Ok(()) };
                    element_entries += u64::from(match element.items {
                        ElementItems::Functions(items) => items.count(),
                        ElementItems::Expressions(_, items) => items.count(),
                    });
                    over(MAX_ELEMENT_ENTRIES, element_entries)?;
                }
            }
            Payload::DataSection(reader) => over(MAX_DATA_SEGMENTS, u64::from(reader.count()))?,
            Payload::DataCountSection { count, .. } => over(MAX_DATA_SEGMENTS, u64::from(count))?,
            Payload::CodeSectionStart { count, .. } => {
                over(MAX_FUNCTIONS, functions + u64::from(count))?
            }
            Payload::CodeSectionEntry(body) => check_body(&body)?,
            _ => {}
        }
    }
    Ok(())
}

/// 1 for a function import, 0 for any other kind.
fn func_import(ty: &wasmparser::TypeRef) -> u64 {
    u64::from(matches!(
        ty,
        wasmparser::TypeRef::Func(_) | wasmparser::TypeRef::FuncExact(_)
    ))
}

/// One function body: its size, its locals and how deep its blocks nest.
fn check_body(body: &wasmparser::FunctionBody<'_>) -> Result<(), OverLimit> {
    let range = body.range();
    over(MAX_BODY_BYTES, (range.end - range.start) as u64)?;
    let Ok(locals) = body.get_locals_reader() else {
        return Ok(());
    };
    let mut count = 0u64;
    for group in locals {
        let Ok((n, _)) = group else { return Ok(()) };
        count += u64::from(n);
        over(MAX_LOCALS, count)?;
    }
    let Ok(mut ops) = body.get_operators_reader() else {
        return Ok(());
    };
    let mut depth = 1u64; // the function's own block
    while !ops.eof() {
        let Ok(op) = ops.read() else { return Ok(()) };
        match op {
            Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::Try { .. }
            | Operator::TryTable { .. } => {
                depth += 1;
                over(MAX_NESTING, depth)?;
            }
            Operator::End => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wasm(text: &str) -> Vec<u8> {
        wat::parse_str(text).unwrap()
    }

    #[test]
    fn ordinary_modules_are_within_every_limit() {
        let module = wasm(
            r#"(module (type (func)) (import "sandbox" "log" (func (param i32 i32) (result i32)))
                (memory 1) (table 2 funcref) (elem (i32.const 0) func $f $f) (data (i32.const 0) "x")
                (func $f (local i32 i64) (block (loop (br 1)))) (export "_start" (func $f)))"#,
        );
        assert_eq!(check(&module), Ok(()));
    }

    #[test]
    fn each_kind_of_bomb_names_its_limit() {
        let locals = wasm("(module (func (local i32) (local i32) (local i64)))");
        assert_eq!(check(&locals), Ok(()));
        let many_locals = wasm(&format!(
            "(module (func {}))",
            "(local i32)".repeat(MAX_LOCALS.max as usize + 1)
        ));
        assert_eq!(check(&many_locals).unwrap_err().limit, MAX_LOCALS);
        let deep = wasm(&format!(
            "(module (func {}{}))",
            "(block ".repeat(MAX_NESTING.max as usize),
            ")".repeat(MAX_NESTING.max as usize)
        ));
        assert_eq!(check(&deep).unwrap_err().limit, MAX_NESTING);
        let functions = wasm(&format!(
            "(module {})",
            "(func)".repeat(MAX_FUNCTIONS.max as usize + 1)
        ));
        assert_eq!(check(&functions).unwrap_err().limit, MAX_FUNCTIONS);
        let elements = wasm(&format!(
            "(module (func $f) (elem func {}))",
            "$f ".repeat(MAX_ELEMENT_ENTRIES.max as usize + 1)
        ));
        assert_eq!(check(&elements).unwrap_err().limit, MAX_ELEMENT_ENTRIES);
    }

    #[test]
    fn bytes_the_parser_cannot_read_are_left_to_the_compiler() {
        assert_eq!(check(b"\0asm\x01\0\0\0\x01\xff\xff\xff\xff\x0f"), Ok(()));
        assert_eq!(check(b"not wasm"), Ok(()));
    }
}
