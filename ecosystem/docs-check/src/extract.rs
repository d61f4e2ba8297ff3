//! The build-script side: finds the examples and writes them out.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// The adapters, by the name that follows `correlation_` in a path.
const ADAPTERS: [&str; 3] = ["axum", "actix", "poem"];

/// The fence attributes rustdoc reads (besides `rust`).
const RUSTDOC_ATTRIBUTES: [&str; 6] = [
    "no_run",
    "should_panic",
    "compile_fail",
    "ignore",
    "test_harness",
    "standalone_crate",
];

/// What a comment says before the line it promises.
const PROMISE: &str = "prints:";

/// One Rust example, where it is written.
struct Example {
    /// `README.md:31`, `crates/correlation-actix/src/lib.rs:120`.
    source: String,
    /// An identifier made of the source: `README_md_line_31`.
    name: String,
    /// The fence's rustdoc attributes, `rust` left out.
    attributes: Vec<String>,
    /// The code as written, hidden `# ` lines included.
    code: Vec<String>,
    /// The lines its `// prints:` comments promise.
    promises: Vec<String>,
}

/// A fenced code block.
struct Block {
    /// The line of the opening fence, from 1.
    line: usize,
    info: String,
    lines: Vec<String>,
}

/// Called by the build script of `correlation-docs-<adapter>`: writes `doctests.rs` (one
/// documented item per example, for rustdoc) and `promises.rs` (a module per example that
/// promises a line, and the `SNIPPETS` table of them) into `OUT_DIR`.
///
/// # Panics
///
/// When an example breaks a rule of CONTRIBUTING.md's "Examples that work when pasted",
/// with one line per problem naming the file and line; and when the files cannot be read
/// or written.
pub fn generate(adapter: &str) {
    let manifest_dir = PathBuf::from(env_var("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env_var("OUT_DIR"));
    let root = manifest_dir.join("../..");
    let mut problems = Vec::new();
    let mut examples = Vec::new();

    let readme_path = root.join("README.md");
    println!("cargo::rerun-if-changed={}", readme_path.display());
    let readme = read(&readme_path);
    let lines = readme.lines().map(str::to_owned).enumerate();
    for block in code_blocks(lines.map(|(index, line)| (index + 1, line))) {
        let Some(example) = example("README.md", block, &mut problems) else {
            continue;
        };
        let named: Vec<&str> = ADAPTERS
            .into_iter()
            .filter(|name| {
                example
                    .code
                    .iter()
                    .any(|line| line.contains(&format!("correlation_{name}")))
            })
            .collect();
        if named.len() != 1 {
            problems.push(format!(
                "{}: names {} adapters ({}); a README example names exactly one, so it is \
                 checked in that adapter's application",
                example.source,
                named.len(),
                named.join(", ")
            ));
            continue;
        }
        if let Some(line) = example.code.iter().find(|line| hidden(line).is_some()) {
            problems.push(format!(
                "{}: `{}` is a hidden rustdoc line, which GitHub and crates.io show as it is; \
                 write the example without hidden lines",
                example.source,
                line.trim()
            ));
        }
        if named[0] == adapter {
            examples.push(example);
        }
    }

    let crate_dir = format!("crates/correlation-{adapter}");
    let source_dir = root.join(&crate_dir).join("src");
    println!("cargo::rerun-if-changed={}", source_dir.display());
    for file in rust_files(&source_dir) {
        let relative = file.strip_prefix(&source_dir).expect("a file under src/");
        let label = format!("{crate_dir}/src/{}", relative.display());
        let text = read(&file);
        for block in doc_blocks(&text) {
            if let Some(example) = example(&label, block, &mut problems) {
                examples.push(example);
            }
        }
    }

    assert!(
        problems.is_empty(),
        "\n{} problem(s) with the examples (CONTRIBUTING.md, \"Examples that work when pasted\"):\n  {}\n",
        problems.len(),
        problems.join("\n  ")
    );
    write(&out_dir.join("doctests.rs"), &doctests(&examples));
    write(&out_dir.join("promises.rs"), &promises(&examples, &out_dir));
}

/// The example in `block` of `file`, checked; `None` for blocks that are not Rust and
/// for those rustdoc does not compile (`ignore`) or that must fail to compile
/// (`compile_fail`: here they would fail for any missing crate too, so the adapter's own
/// doc tests prove them).
fn example(file: &str, block: Block, problems: &mut Vec<String>) -> Option<Example> {
    let attributes = rust_attributes(&block.info)?;
    if attributes
        .iter()
        .any(|attribute| attribute.starts_with("ignore") || attribute == "compile_fail")
    {
        return None;
    }
    let source = format!("{file}:{}", block.line);
    let name: String = format!("{file}_line_{}", block.line)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let mut promises = Vec::new();
    for line in &block.lines {
        let code = hidden(line).unwrap_or(line);
        match promise(code) {
            Some("") => {
                problems.push(format!("{source}: `{PROMISE}` is followed by no line"));
            }
            Some(promised) => promises.push(promised.to_owned()),
            None => {
                if let Some(comment) = log_line_comment(code) {
                    problems.push(format!(
                        "{source}: `// {comment}` reads as a promised log line but is not \
                         checked; write `// {PROMISE} {comment}` (or say it another way)"
                    ));
                }
            }
        }
    }
    let code = block.lines.join("\n");
    let sets_up_logging = code.contains(".init()")
        && (code.contains("env_logger") || code.contains("tracing_subscriber"));
    if sets_up_logging && promises.is_empty() {
        problems.push(format!(
            "{source}: sets up a logger but promises no line; add `// {PROMISE} <line>` on \
             the line that logs, so the check runs it"
        ));
    }
    Some(Example {
        source,
        name,
        attributes,
        code: block.lines,
        promises,
    })
}

/// The rustdoc attributes of a fence's info string, or `None` when the block is not Rust.
/// As rustdoc reads it: no info string is Rust, and so is any made only of its attributes.
fn rust_attributes(info: &str) -> Option<Vec<String>> {
    let tokens: Vec<&str> = info
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|token| !token.is_empty())
        .collect();
    let known = |token: &&str| {
        RUSTDOC_ATTRIBUTES.contains(token)
            || token.starts_with("ignore-")
            || token.starts_with("edition")
            || (token.len() == 5
                && token.starts_with('E')
                && token[1..].bytes().all(|b| b.is_ascii_digit()))
    };
    let rust = tokens.contains(&"rust");
    if !rust && !tokens.iter().all(known) {
        return None;
    }
    Some(
        tokens
            .into_iter()
            .filter(known)
            .map(str::to_owned)
            .collect(),
    )
}

/// What a hidden rustdoc line (`# code`, or `#` alone) holds, as rustdoc reads it.
fn hidden(line: &str) -> Option<&str> {
    let trimmed = line.trim();
    if trimmed.starts_with("##") {
        None
    } else if trimmed == "#" {
        Some("")
    } else {
        trimmed.strip_prefix("# ")
    }
}

/// The line a `// prints: <line>` comment promises.
fn promise(code: &str) -> Option<&str> {
    let at = code.find(PROMISE)?;
    code[..at]
        .contains("//")
        .then(|| code[at + PROMISE.len()..].trim())
}

/// A `//` comment that starts like one of our log lines (`INFO  [`, after a timestamp or
/// not), which a reader takes for a promise.
fn log_line_comment(code: &str) -> Option<&str> {
    let (_, comment) = code.split_once("//")?;
    let comment = comment.trim();
    let (level, rest) = crate::run::without_timestamp(comment).split_once(char::is_whitespace)?;
    let is_level = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level);
    (is_level && rest.trim_start().starts_with('[')).then_some(comment)
}

/// The fenced code blocks of a Markdown text given as numbered lines.
fn code_blocks(lines: impl Iterator<Item = (usize, String)>) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, Block)> = None;
    for (number, line) in lines {
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                let fence_length = trimmed.chars().take_while(|&c| c == '`').count();
                if fence_length >= 3 {
                    open = Some((
                        "`".repeat(fence_length),
                        Block {
                            line: number,
                            info: trimmed[fence_length..].trim().to_owned(),
                            lines: Vec::new(),
                        },
                    ));
                }
            }
            Some((fence, block)) => {
                let closing = trimmed.trim_end();
                if closing.starts_with(fence.as_str()) && closing.chars().all(|c| c == '`') {
                    blocks.extend(open.take().map(|(_, block)| block));
                } else {
                    block.lines.push(line);
                }
            }
        }
    }
    blocks
}

/// The fenced code blocks of the doc comments (`//!`, `///`) of a Rust file.
fn doc_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut group: Vec<(usize, String)> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let doc = if trimmed.starts_with("////") {
            None
        } else {
            trimmed
                .strip_prefix("//!")
                .or_else(|| trimmed.strip_prefix("///"))
        };
        match doc {
            Some(doc) => group.push((index + 1, doc.strip_prefix(' ').unwrap_or(doc).to_owned())),
            None if !group.is_empty() => blocks.extend(code_blocks(group.drain(..))),
            None => {}
        }
    }
    blocks.extend(code_blocks(group.into_iter()));
    blocks
}

/// `doctests.rs`: one item per example, documented with the example, for rustdoc.
fn doctests(examples: &[Example]) -> String {
    let mut out = String::new();
    for example in examples {
        let mut info = vec!["rust".to_owned()];
        info.extend(example.attributes.iter().cloned());
        let doc = format!(
            "`{}`\n\n````{}\n{}\n````\n",
            example.source,
            info.join(","),
            example.code.join("\n")
        );
        let _ = writeln!(
            out,
            "#[doc = {doc:?}]\n#[allow(non_camel_case_types)]\npub struct {};\n",
            example.name
        );
    }
    out
}

/// `promises.rs`: a module per example that promises a line (in a file of its own in
/// `out_dir`, holding the example as a program), and the `SNIPPETS` table the `promises`
/// test runs.
///
/// An example without `fn main` is wrapped in one as rustdoc wraps it. One that serves on
/// port 8080 binds port 0 instead. One that builds an `app` without serving it (and not in
/// an `async fn main`) gets one `GET /` sent to `app` at the end of its `main` (before its
/// `Ok(())`), through the `request!` macro of the test.
fn promises(examples: &[Example], out_dir: &Path) -> String {
    let mut table = String::from("const SNIPPETS: &[correlation_docs_check::run::Snippet] = &[\n");
    let mut modules = String::new();
    for example in examples
        .iter()
        .filter(|example| !example.promises.is_empty())
    {
        let mut lines: Vec<String> = example
            .code
            .iter()
            .map(|line| hidden(line).map_or_else(|| line.clone(), str::to_owned))
            .collect();
        let serves = lines.iter().any(|line| line.contains("8080"));
        if serves {
            for line in &mut lines {
                *line = line.replace("8080", "0");
            }
        }
        let has_main = lines.iter().any(|line| line.contains("fn main("));
        let returns_result = !has_main
            && lines
                .iter()
                .rev()
                .find(|line| !line.trim().is_empty())
                .is_some_and(|line| line.trim_end().ends_with("(())"));
        let builds_app = !serves
            && lines.iter().any(|line| line.contains("let app"))
            && !lines.iter().any(|line| line.contains("async fn main("));
        if builds_app {
            let last = |found: &dyn Fn(&str) -> bool| lines.iter().rposition(|line| found(line));
            let at = if has_main {
                last(&|line| line.trim() == "Ok(())").or_else(|| last(&|line| line == "}"))
            } else if returns_result {
                last(&|line| !line.trim().is_empty())
            } else {
                None
            };
            lines.insert(
                at.unwrap_or(lines.len()),
                "let _response = request!(app);".to_owned(),
            );
        }
        let body = if has_main {
            lines.join("\n")
        } else {
            let output = if returns_result {
                " -> Result<(), impl std::fmt::Debug>"
            } else {
                ""
            };
            format!("fn main(){output} {{\n{}\n}}", lines.join("\n"))
        };
        let name = &example.name;
        // A file of its own, named after the example, so a compiler error names it.
        let file = out_dir.join(format!("{name}.rs"));
        write(
            &file,
            &format!(
                "// {}, written out by correlation-docs-check.\n\
                 #![allow(warnings, clippy::all, clippy::pedantic, clippy::nursery)]\n\
                 {body}\n\n\
                 pub(crate) const TARGET: &str = module_path!();\n\n\
                 pub(crate) fn run() -> std::process::ExitCode {{\n    \
                 std::process::Termination::report(main())\n}}\n",
                example.source
            ),
        );
        let _ = writeln!(
            modules,
            "#[allow(non_snake_case)]\n#[path = {:?}]\nmod {name};\n",
            file.display().to_string()
        );
        let _ = writeln!(
            table,
            "    correlation_docs_check::run::Snippet {{ source: {:?}, target: {name}::TARGET, \
             promises: &{:?}, serves: {serves}, run: {name}::run }},",
            example.source, example.promises
        );
    }
    table.push_str("];\n\n");
    table + &modules
}

/// The `.rs` files under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let entries =
            fs::read_dir(&dir).unwrap_or_else(|err| panic!("reading {}: {err}", dir.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn env_var(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("`{name}` is not set: call `generate` from a build script"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()))
}

fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|err| panic!("writing {}: {err}", path.display()));
}

#[cfg(test)]
mod tests {
    use super::{code_blocks, doc_blocks, hidden, log_line_comment, promise, rust_attributes};

    #[test]
    fn rust_blocks_are_those_rustdoc_compiles() {
        assert_eq!(rust_attributes(""), Some(vec![]));
        assert_eq!(rust_attributes("rust"), Some(vec![]));
        assert_eq!(rust_attributes("no_run"), Some(vec!["no_run".to_owned()]));
        assert_eq!(
            rust_attributes("rust,should_panic"),
            Some(vec!["should_panic".to_owned()])
        );
        assert_eq!(
            rust_attributes("compile_fail,E0433"),
            Some(vec!["compile_fail".to_owned(), "E0433".to_owned()])
        );
        assert_eq!(rust_attributes("text"), None);
        assert_eq!(rust_attributes("toml"), None);
        assert_eq!(rust_attributes("sh"), None);
    }

    #[test]
    fn hidden_lines_are_read_as_rustdoc_reads_them() {
        assert_eq!(hidden("# #[tokio::main]"), Some("#[tokio::main]"));
        assert_eq!(hidden("    # async fn main() {"), Some("async fn main() {"));
        assert_eq!(hidden("#"), Some(""));
        assert_eq!(hidden("#[handler]"), None);
        assert_eq!(hidden("## not hidden"), None);
    }

    #[test]
    fn promises_follow_a_comments_prints() {
        assert_eq!(
            promise(r#"    log::info!("handling"); // prints: INFO  [<id>] my_app: handling"#),
            Some("INFO  [<id>] my_app: handling")
        );
        assert_eq!(promise("// `GET /` prints: a line"), Some("a line"));
        assert_eq!(promise(r#"println!("prints: {x}"); // no promise"#), None);
        assert_eq!(
            log_line_comment(r#"log::info!("x"); // INFO  [<id>] my_app: x"#),
            Some("INFO  [<id>] my_app: x")
        );
        assert_eq!(
            log_line_comment(r#"log::info!("x"); // 2026-12-05T13:05:39Z INFO  [-] my_app: x"#),
            Some("2026-12-05T13:05:39Z INFO  [-] my_app: x")
        );
        assert_eq!(log_line_comment("// INFO and above"), None);
    }

    #[test]
    fn blocks_are_found_in_markdown_and_doc_comments() {
        let markdown = "text\n```rust\nlet a = 1;\n```\n```toml\nx = 1\n```\n";
        let blocks = code_blocks(markdown.lines().map(str::to_owned).enumerate());
        assert_eq!(blocks.len(), 2);
        assert_eq!((blocks[0].line, blocks[0].info.as_str()), (1, "rust"));
        assert_eq!(blocks[0].lines, ["let a = 1;"]);

        let source = "//! Docs.\n//!\n//! ```no_run\n//! # fn main() {}\n//! ```\nfn f() {}\n\
                      /// ```\n///     /// Inner.\n/// ```\nstruct S;\n";
        let blocks = doc_blocks(source);
        assert_eq!(blocks.len(), 2);
        assert_eq!((blocks[0].line, blocks[0].info.as_str()), (3, "no_run"));
        assert_eq!(blocks[0].lines, ["# fn main() {}"]);
        assert_eq!(
            (blocks[1].line, blocks[1].lines[0].as_str()),
            (7, "    /// Inner.")
        );
    }
}
