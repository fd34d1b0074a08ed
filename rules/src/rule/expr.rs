//! Rule conditions: Rhai expressions compiled once at load time by the one engine builder, in a
//! sandbox (expressions only: no statements, loops, functions or I/O; operation, depth, size and
//! time limits). History functions (`avg`, `max_over`, `changed_within` …) read the series being
//! evaluated through a thread-local context set for the duration of one evaluation.

use crate::source::{Interner, Point, SourceKind};
use regex::Regex;
use rhai::{AST, Dynamic, Engine, EvalAltResult, ImmutableString, Scope};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

/// Operation budget of one evaluation; a condition is a few dozen operations.
pub const MAX_OPERATIONS: u64 = 50_000;
/// Wall-clock budget of one evaluation.
pub const MAX_EVAL_TIME: Duration = Duration::from_millis(50);

/// The history functions conditions can call: `name("field", "window")`.
pub const HISTORY_FUNCTIONS: [&str; 7] =
    ["avg", "max_over", "min_over", "sum_over", "delta", "changed_within", "changes"];

static HISTORY_CALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"\b(avg|max_over|min_over|sum_over|delta|changed_within|changes)\s*\(\s*([^,)]*?)\s*,\s*([^)]*?)\s*\)"#,
    )
    .expect("static regex")
});

/// A compiled condition: its source, AST, and the history it needs (field index, window).
#[derive(Debug, Clone)]
pub struct Condition {
    pub source: String,
    ast: Arc<AST>,
    pub history: Vec<(usize, Duration)>,
}

/// What the history functions see while one series is evaluated.
struct HistoryContext {
    kind: SourceKind,
    now_ms: i64,
    history: Arc<Vec<(usize, VecDeque<Point>)>>,
    /// Current values as history points (so "changed within" sees the latest reading).
    strings: Arc<std::sync::Mutex<Interner>>,
}

thread_local! {
    static CONTEXT: RefCell<Option<HistoryContext>> = const { RefCell::new(None) };
    static DEADLINE: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// A compile error with its position inside the expression (1-based line and column).
#[derive(Debug, Clone, PartialEq)]
pub struct ExprError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// The one Rhai engine every condition is compiled and evaluated with.
pub fn engine() -> Engine {
    let mut e = Engine::new();
    e.set_max_operations(MAX_OPERATIONS)
        .set_max_expr_depths(64, 16)
        .set_max_call_levels(8)
        .set_max_string_size(4096)
        .set_max_array_size(1024)
        .set_max_map_size(256)
        .set_strict_variables(true)
        .set_allow_looping(false)
        .set_allow_shadowing(false);
    e.disable_symbol("eval");
    e.disable_symbol("print");
    e.disable_symbol("debug");
    e.on_print(|_| {});
    e.on_debug(|_, _, _| {});
    e.on_progress(|ops| {
        if ops % 1024 == 0
            && let Some(deadline) = DEADLINE.get()
            && Instant::now() > deadline
        {
            return Some(Dynamic::from(ImmutableString::from("evaluation took too long")));
        }
        None
    });
    // A missing value (no rate yet, empty window) is never above or below anything.
    macro_rules! missing_is_false {
        ($($op:literal),*) => {$(
            e.register_fn($op, |_: (), _: f64| false);
            e.register_fn($op, |_: (), _: i64| false);
            e.register_fn($op, |_: f64, _: ()| false);
            e.register_fn($op, |_: i64, _: ()| false);
        )*};
    }
    missing_is_false!(">", ">=", "<", "<=");
    e.register_fn("avg", |f: &str, w: &str| aggregate(f, w, Agg::Avg));
    e.register_fn("max_over", |f: &str, w: &str| aggregate(f, w, Agg::Max));
    e.register_fn("min_over", |f: &str, w: &str| aggregate(f, w, Agg::Min));
    e.register_fn("sum_over", |f: &str, w: &str| aggregate(f, w, Agg::Sum));
    e.register_fn("delta", |f: &str, w: &str| aggregate(f, w, Agg::Delta));
    e.register_fn("changes", |f: &str, w: &str| aggregate(f, w, Agg::Changes));
    e.register_fn("changed_within", |f: &str, w: &str| -> Result<bool, Box<EvalAltResult>> {
        Ok(aggregate(f, w, Agg::Changes)?.as_float().unwrap_or(0.0) > 0.0)
    });
    e
}

#[derive(Clone, Copy)]
enum Agg {
    Avg,
    Max,
    Min,
    Sum,
    Delta,
    Changes,
}

fn aggregate(field: &str, window: &str, agg: Agg) -> Result<Dynamic, Box<EvalAltResult>> {
    let window = humantime::parse_duration(window).map_err(|e| format!("window {window:?}: {e}"))?;
    CONTEXT.with_borrow(|ctx| {
        let ctx = ctx.as_ref().ok_or("history functions are only available while a rule is evaluated")?;
        let index =
            ctx.kind.field_index(field).ok_or_else(|| format!("{} has no field {field:?}", ctx.kind.as_str()))?;
        let points = ctx.history.iter().find(|(i, _)| *i == index).map(|(_, p)| p).ok_or_else(|| {
            format!("no history kept for {field:?} (only literal field and window arguments are tracked)")
        })?;
        let from = ctx.now_ms - window.as_millis() as i64;
        let _ = &ctx.strings;
        let in_window = points.iter().filter(|(t, v)| *t >= from && !v.is_nan());
        let value = match agg {
            Agg::Avg => {
                let (n, s) = in_window.fold((0u32, 0.0), |(n, s), (_, v)| (n + 1, s + v));
                if n == 0 { return Ok(Dynamic::UNIT) } else { s / f64::from(n) }
            }
            Agg::Max => match in_window.map(|(_, v)| *v).reduce(f64::max) {
                Some(v) => v,
                None => return Ok(Dynamic::UNIT),
            },
            Agg::Min => match in_window.map(|(_, v)| *v).reduce(f64::min) {
                Some(v) => v,
                None => return Ok(Dynamic::UNIT),
            },
            Agg::Sum => in_window.map(|(_, v)| *v).sum(),
            Agg::Delta => {
                let v: Vec<f64> = in_window.map(|(_, v)| *v).collect();
                match (v.first(), v.last()) {
                    (Some(a), Some(b)) => b - a,
                    _ => return Ok(Dynamic::UNIT),
                }
            }
            Agg::Changes => {
                // Count changes between consecutive points inside the window, plus a change from
                // the last point before the window to the first inside it.
                let mut prev = points.iter().rev().find(|(t, v)| *t < from && !v.is_nan()).map(|(_, v)| *v);
                let mut n = 0.0;
                for (_, v) in points.iter().filter(|(t, v)| *t >= from && !v.is_nan()) {
                    if prev.is_some_and(|p| p != *v) {
                        n += 1.0;
                    }
                    prev = Some(*v);
                }
                n
            }
        };
        Ok(Dynamic::from_float(value))
    })
}

/// A scope with every field of `kind` declared, for compile-time checking of variable names.
pub fn declaration_scope(kind: SourceKind) -> Scope<'static> {
    let mut s = Scope::new();
    for f in kind.fields() {
        s.push_dynamic(*f, Dynamic::UNIT); // variables, not constants: the optimiser would fold constants
    }
    s
}

/// Compiles one condition for `kind`. Errors carry the position within `src`.
pub fn compile(engine: &Engine, kind: SourceKind, src: &str) -> Result<Condition, ExprError> {
    let scope = declaration_scope(kind);
    let ast = engine.compile_expression_with_scope(&scope, src).map_err(|e| {
        let p = e.position();
        ExprError { line: p.line().unwrap_or(1), column: p.position().unwrap_or(1), message: e.0.to_string() }
    })?;
    let mut history = Vec::new();
    for cap in HISTORY_CALL.captures_iter(src) {
        let at = cap.get(0).map_or(0, |m| m.start());
        let line = src[..at].matches('\n').count() + 1;
        let err = |message: String| ExprError { line, column: 1, message };
        let unquote = |s: &str| {
            s.strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .map(str::to_owned)
                .ok_or_else(|| err(format!("{}(…) takes literal strings: {}(\"field\", \"5m\")", &cap[1], &cap[1])))
        };
        let field = unquote(&cap[2])?;
        let window = unquote(&cap[3])?;
        let index = kind.field_index(&field).ok_or_else(|| {
            err(format!("{} has no field {field:?} (fields: {})", kind.as_str(), kind.fields().join(", ")))
        })?;
        let window = humantime::parse_duration(&window).map_err(|e| err(format!("window {window:?}: {e}")))?;
        if window.is_zero() {
            return Err(err("a history window must be longer than zero".into()));
        }
        history.push((index, window));
    }
    Ok(Condition { source: src.to_string(), ast: Arc::new(ast), history })
}

/// Why an evaluation did not give a boolean.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalError(pub String);

impl std::fmt::Display for EvalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reusable evaluation state (one per evaluating thread): the scope's allocation is kept.
pub struct Evaluator {
    engine: Engine,
    scope: Scope<'static>,
    strings: Arc<std::sync::Mutex<Interner>>,
}

impl Default for Evaluator {
    fn default() -> Self {
        Evaluator { engine: engine(), scope: Scope::new(), strings: Arc::default() }
    }
}

impl Evaluator {
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Evaluates `cond` over one series' fields. A missing value (`()`) in a comparison is an
    /// error Rhai reports; rules that may see missing values guard with `x != ()`.
    pub fn eval(
        &mut self,
        cond: &Condition,
        kind: SourceKind,
        fields: &[Dynamic],
        history: &Arc<Vec<(usize, VecDeque<Point>)>>,
        now_ms: i64,
    ) -> Result<bool, EvalError> {
        self.bind(kind, fields);
        self.eval_bound(cond, kind, history, now_ms)
    }

    /// Puts one series' fields in the scope, for any number of [`eval_bound`](Self::eval_bound)
    /// calls on that series (conditions are expressions: they cannot change the scope).
    pub fn bind(&mut self, kind: SourceKind, fields: &[Dynamic]) {
        self.scope.clear();
        for (name, v) in kind.fields().iter().zip(fields) {
            self.scope.push_dynamic(*name, v.clone());
        }
    }

    /// [`eval`](Self::eval) over the fields of the last [`bind`](Self::bind).
    pub fn eval_bound(
        &mut self,
        cond: &Condition,
        kind: SourceKind,
        history: &Arc<Vec<(usize, VecDeque<Point>)>>,
        now_ms: i64,
    ) -> Result<bool, EvalError> {
        let uses_history = !cond.history.is_empty();
        if uses_history {
            CONTEXT.set(Some(HistoryContext { kind, now_ms, history: history.clone(), strings: self.strings.clone() }));
        }
        DEADLINE.set(Some(Instant::now() + MAX_EVAL_TIME));
        let r = self.engine.eval_ast_with_scope::<Dynamic>(&mut self.scope, &cond.ast);
        DEADLINE.set(None);
        if uses_history {
            CONTEXT.set(None);
        }
        let v = r.map_err(|e| EvalError(e.to_string()))?;
        if v.is_unit() {
            // A condition over a missing value (first poll, no rate yet) is not true.
            return Ok(false);
        }
        v.as_bool().map_err(|t| EvalError(format!("condition gave a {t}, not a boolean")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Dynamic {
        Dynamic::from(ImmutableString::from(v))
    }

    fn fields(kind: SourceKind, set: &[(&str, Dynamic)]) -> Vec<Dynamic> {
        kind.fields()
            .iter()
            .map(|f| set.iter().find(|(n, _)| n == f).map(|(_, v)| v.clone()).unwrap_or(Dynamic::UNIT))
            .collect()
    }

    #[test]
    fn conditions_compile_check_names_and_evaluate() {
        let mut ev = Evaluator::default();
        let c = compile(ev.engine(), SourceKind::Interface, r#"admin_status == "up" && oper_status != "up""#).unwrap();
        let f = fields(SourceKind::Interface, &[("admin_status", s("up")), ("oper_status", s("down"))]);
        assert!(ev.eval(&c, SourceKind::Interface, &f, &Arc::default(), 0).unwrap());
        let e = compile(ev.engine(), SourceKind::Interface, "oper_stauts == 1").unwrap_err();
        assert!(e.message.contains("oper_stauts"), "{e:?}");
        let e = compile(ev.engine(), SourceKind::Device, "status ==").unwrap_err();
        assert_eq!(e.line, 1);
    }

    #[test]
    fn the_sandbox_refuses_statements_loops_and_runaway_work() {
        let ev = Evaluator::default();
        for src in ["loop { }", "let x = 1; x", "while true {}", r#"eval("1")"#, "fn f() { 1 }", r#"print("x")"#] {
            assert!(compile(ev.engine(), SourceKind::Device, src).is_err(), "{src} compiled");
        }
        // A long string repeat blows the size limit instead of the memory.
        let mut ev = Evaluator::default();
        let c = compile(ev.engine(), SourceKind::Device, r#""x".pad(1000000, "y") == """#).unwrap();
        let f = fields(SourceKind::Device, &[]);
        assert!(ev.eval(&c, SourceKind::Device, &f, &Arc::default(), 0).is_err());
    }

    #[test]
    fn missing_values_are_not_true_and_non_booleans_are_errors() {
        let mut ev = Evaluator::default();
        let f = fields(SourceKind::Interface, &[]);
        let c = compile(ev.engine(), SourceKind::Interface, "in_errors").unwrap();
        assert_eq!(ev.eval(&c, SourceKind::Interface, &f, &Arc::default(), 0), Ok(false));
        let c = compile(ev.engine(), SourceKind::Interface, "in_errors > 1 || in_errors <= 1.5").unwrap();
        assert_eq!(ev.eval(&c, SourceKind::Interface, &f, &Arc::default(), 0), Ok(false));
        let c = compile(ev.engine(), SourceKind::Interface, "1 + 1").unwrap();
        assert!(ev.eval(&c, SourceKind::Interface, &f, &Arc::default(), 0).is_err());
    }

    #[test]
    fn history_functions_see_the_window() {
        let mut ev = Evaluator::default();
        let kind = SourceKind::Interface;
        let c = compile(ev.engine(), kind, r#"avg("in_errors", "5m") > 10 && changed_within("oper_status", "10m")"#)
            .unwrap();
        let errors = kind.field_index("in_errors").unwrap();
        let oper = kind.field_index("oper_status").unwrap();
        assert_eq!(c.history, vec![(errors, Duration::from_secs(300)), (oper, Duration::from_secs(600))]);
        let now = 1_000_000_000;
        let min = 60_000;
        let hist = Arc::new(vec![
            (errors, VecDeque::from(vec![(now - 10 * min, 1000.0), (now - 2 * min, 20.0), (now, 30.0)])),
            (oper, VecDeque::from(vec![(now - 20 * min, 1.0), (now - 5 * min, 2.0), (now, 2.0)])),
        ]);
        let f = fields(kind, &[]);
        // avg over 5m = 25 (the 1000 is outside), oper changed 5m ago
        assert_eq!(ev.eval(&c, kind, &f, &hist, now), Ok(true));
        let later = now + 11 * min;
        assert_eq!(ev.eval(&c, kind, &f, &hist, later), Ok(false));
        let e = compile(ev.engine(), kind, r#"avg("nope", "5m") > 1"#).unwrap_err();
        assert!(e.message.contains("no field \"nope\""), "{e:?}");
        let e = compile(ev.engine(), kind, r#"avg("in_errors", "fortnight") > 1"#).unwrap_err();
        assert!(e.message.contains("window"), "{e:?}");
    }
}
