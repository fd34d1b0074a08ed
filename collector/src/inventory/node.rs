//! A YAML document as a tree whose every node remembers its line, and a serde `Deserializer`
//! over that tree, so typed structs (with `deny_unknown_fields`) can be read one device at a time
//! and every error, not just the first, can point at a line.
//!
//! Scalars are kept as the text the user wrote: `community: 007` stays "007", not 7.

use serde::de::{self, DeserializeSeed, IntoDeserializer as _, Visitor};
use serde_saphyr::Spanned;
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// 1-based line of the node (for a block mapping in a sequence: the line of its first key).
    pub line: u64,
    pub kind: NodeKind,
    /// Byte range in the source, used to recover the spelling of non-string plain scalars.
    span: Option<(usize, usize)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Null,
    /// `typed` is set when YAML resolved the scalar to a number or boolean; its text is then
    /// taken from the source rather than from the resolved value.
    Scalar {
        text: String,
        typed: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// A YAML syntax error: message without the location suffix, and the line when known.
#[derive(Debug)]
pub struct SyntaxError {
    pub line: Option<u64>,
    pub message: String,
}

/// Parses one YAML document. An empty document is `Null`.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    if text.trim().is_empty() {
        return Ok(Node { line: 1, kind: NodeKind::Null, span: None });
    }
    let options = serde_saphyr::options! { with_snippet: false };
    let mut root: Node = serde_saphyr::from_str_with_options(text, options).map_err(|err| {
        let line = err.location().map(|l| l.line()).filter(|&l| l > 0);
        // The user formatter never quotes the source (which may hold secrets) and does not
        // suggest library settings; we print the line ourselves, so drop its location suffix.
        let mut render = serde_saphyr::RenderOptions::new(&serde_saphyr::UserMessageFormatter);
        render.snippets = serde_saphyr::SnippetMode::Off;
        let rendered = err.render_with_options(render);
        let message = match rendered.rfind(" at line ") {
            Some(at) if line.is_some() => rendered[..at].to_owned(),
            _ => rendered,
        };
        SyntaxError { line, message }
    })?;
    root.restore_spelling(text);
    Ok(root)
}

impl Node {
    fn restore_spelling(&mut self, source: &str) {
        match &mut self.kind {
            NodeKind::Scalar { text, typed: true } => {
                let raw = self.span.and_then(|(start, len)| source.get(start..start + len));
                // An alias (`*a`) points at the alias token, not the value: keep the value then.
                if let Some(raw) = raw.filter(|r| !r.is_empty() && !r.starts_with('*')) {
                    *text = raw.to_owned();
                }
            }
            NodeKind::Scalar { typed: false, .. } | NodeKind::Null => {}
            NodeKind::Seq(items) => items.iter_mut().for_each(|n| n.restore_spelling(source)),
            NodeKind::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
                k.restore_spelling(source);
                v.restore_spelling(source);
            }),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The key node and value node of `key` in a mapping.
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        match &self.kind {
            NodeKind::Map(entries) => entries.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    /// Line of the value at a dotted path (`snmp.auth`), falling back to the deepest node found.
    pub fn line_of(&self, path: &str) -> u64 {
        let mut node = self;
        for key in path.split('.') {
            match node.entry(key) {
                Some((_, value)) => node = value,
                None => break,
            }
        }
        node.line
    }

    /// What the node is, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            NodeKind::Null => "nothing",
            NodeKind::Scalar { .. } => "a scalar",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }
}

// ---- reading the tree from serde-saphyr ----

impl<'de> de::Deserialize<'de> for Node {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<NodeKind>::deserialize(deserializer)?;
        let span = spanned.referenced.span();
        let span = span
            .byte_offset()
            .zip(span.byte_len())
            .and_then(|(start, len)| Some((usize::try_from(start).ok()?, usize::try_from(len).ok()?)));
        Ok(Node { line: spanned.referenced.line(), kind: spanned.value, span })
    }
}

impl<'de> de::Deserialize<'de> for NodeKind {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeKindVisitor)
    }
}

struct NodeKindVisitor;

impl NodeKindVisitor {
    fn typed(text: impl ToString) -> NodeKind {
        NodeKind::Scalar { text: text.to_string(), typed: true }
    }
}

impl<'de> Visitor<'de> for NodeKindVisitor {
    type Value = NodeKind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<NodeKind, E> {
        Ok(Self::typed(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<NodeKind, E> {
        Ok(Self::typed(v))
    }
    fn visit_i128<E>(self, v: i128) -> Result<NodeKind, E> {
        Ok(Self::typed(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<NodeKind, E> {
        Ok(Self::typed(v))
    }
    fn visit_u128<E>(self, v: u128) -> Result<NodeKind, E> {
        Ok(Self::typed(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<NodeKind, E> {
        Ok(Self::typed(v))
    }
    fn visit_char<E>(self, v: char) -> Result<NodeKind, E> {
        Ok(NodeKind::Scalar { text: v.to_string(), typed: false })
    }
    fn visit_str<E>(self, v: &str) -> Result<NodeKind, E> {
        Ok(NodeKind::Scalar { text: v.to_owned(), typed: false })
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<NodeKind, E> {
        match std::str::from_utf8(v) {
            Ok(text) => self.visit_str(text),
            Err(_) => Err(E::custom("binary data that is not UTF-8")),
        }
    }
    fn visit_unit<E>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Null)
    }
    fn visit_none<E>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<NodeKind, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<NodeKind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(NodeKind::Seq(items))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<NodeKind, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(NodeKind::Map(entries))
    }
}

// ---- typed reading from the tree ----

/// An error while reading a typed value from the tree, with the line and path of the innermost
/// node that failed (set on the way out).
#[derive(Debug)]
pub struct NodeError {
    pub line: Option<u64>,
    /// Path of the failing node; for a bad key (`unknown field`), the path of that key.
    pub path: Vec<String>,
    /// The failing node is a mapping key rather than a value.
    pub at_key: bool,
    pub message: String,
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NodeError {}

impl de::Error for NodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        NodeError { line: None, path: Vec::new(), at_key: false, message: msg.to_string() }
    }
}

impl NodeError {
    fn at(mut self, node: &Node, path: &[String], at_key: bool) -> Self {
        if self.line.is_none() {
            self.line = Some(node.line);
            self.path = path.to_vec();
            self.at_key = at_key;
        }
        self
    }

    /// Where to say the error is: the value's path, or for a bad key the mapping holding it.
    pub fn display_path(&self) -> String {
        let path = if self.at_key { &self.path[..self.path.len().saturating_sub(1)] } else { &self.path[..] };
        path.join(".")
    }
}

/// Reads `T` from `node`, stopping at the first error.
pub fn from_node<'a, T: de::Deserialize<'a>>(node: &'a Node) -> Result<T, NodeError> {
    T::deserialize(NodeDeserializer { node, path: Vec::new() })
}

/// Reads `T` from `node` and reports every error, not just the first: after each failure the
/// offending key or value is cut out and reading starts again. Returns what could be read
/// without the bad parts (if anything) and the errors.
pub fn from_node_collecting<T: de::DeserializeOwned>(node: &Node) -> (Option<T>, Vec<NodeError>) {
    let mut errors = Vec::new();
    let mut pruned: Option<Node> = None;
    loop {
        let current = pruned.as_ref().unwrap_or(node);
        match from_node::<T>(current) {
            Ok(value) => return (Some(value), errors),
            Err(error) => {
                let mut next = current.clone();
                let removed = !error.path.is_empty() && next.remove(&error.path);
                errors.push(error);
                if !removed {
                    return (None, errors);
                }
                pruned = Some(next);
            }
        }
    }
}

impl Node {
    /// Removes the map entry or list item at `path`; false if there is none.
    fn remove(&mut self, path: &[String]) -> bool {
        let Some((last, parents)) = path.split_last() else {
            return false;
        };
        let mut node = self;
        for segment in parents {
            let child = match &mut node.kind {
                NodeKind::Map(entries) => entries.iter_mut().find(|(k, _)| k.as_str() == Some(segment)).map(|(_, v)| v),
                NodeKind::Seq(items) => segment.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
                _ => None,
            };
            match child {
                Some(child) => node = child,
                None => return false,
            }
        }
        match &mut node.kind {
            NodeKind::Map(entries) => match entries.iter().position(|(k, _)| k.as_str() == Some(last)) {
                Some(i) => {
                    entries.remove(i);
                    true
                }
                None => false,
            },
            NodeKind::Seq(items) => match last.parse::<usize>() {
                Ok(i) if i < items.len() => {
                    items.remove(i);
                    true
                }
                _ => false,
            },
            _ => false,
        }
    }
}

struct NodeDeserializer<'a> {
    node: &'a Node,
    path: Vec<String>,
}

impl NodeDeserializer<'_> {
    fn child_path(&self, segment: &str) -> Vec<String> {
        let mut path = self.path.clone();
        path.push(segment.to_owned());
        path
    }
}

impl<'de> de::Deserializer<'de> for NodeDeserializer<'de> {
    type Error = NodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        let (node, path) = (self.node, self.path.clone());
        let result = match &node.kind {
            NodeKind::Null => visitor.visit_unit(),
            NodeKind::Scalar { text, .. } => visitor.visit_borrowed_str(text),
            NodeKind::Seq(items) => visitor.visit_seq(SeqReader { items: items.iter(), index: 0, parent: self }),
            NodeKind::Map(entries) => {
                visitor.visit_map(MapReader { entries: entries.iter(), value: None, parent: self })
            }
        };
        result.map_err(|e| e.at(node, &path, false))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        match self.node.kind {
            NodeKind::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    /// Only a mapping is a struct: serde would otherwise accept a list, field by position.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        match self.node.kind {
            NodeKind::Map(_) => self.deserialize_any(visitor),
            _ => Err(<NodeError as de::Error>::custom(format!("expected a mapping, found {}", self.node.kind_name()))
                .at(self.node, &self.path, false)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

struct SeqReader<'a> {
    items: std::slice::Iter<'a, Node>,
    index: usize,
    parent: NodeDeserializer<'a>,
}

impl<'de> de::SeqAccess<'de> for SeqReader<'de> {
    type Error = NodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, NodeError> {
        let Some(node) = self.items.next() else {
            return Ok(None);
        };
        let path = self.parent.child_path(&self.index.to_string());
        self.index += 1;
        seed.deserialize(NodeDeserializer { node, path }).map(Some)
    }
}

struct MapReader<'a> {
    entries: std::slice::Iter<'a, (Node, Node)>,
    value: Option<(&'a Node, Vec<String>)>,
    parent: NodeDeserializer<'a>,
}

impl<'de> de::MapAccess<'de> for MapReader<'de> {
    type Error = NodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, NodeError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let key_text = key.as_str().unwrap_or("?");
        let path = self.parent.child_path(key_text);
        self.value = Some((value, path.clone()));
        // Keys are read as plain strings so `unknown field` errors land on the key's line.
        let key_de: de::value::StrDeserializer<'_, NodeError> = key_text.into_deserializer();
        match key.kind {
            NodeKind::Scalar { .. } => seed.deserialize(key_de).map(Some).map_err(|e| e.at(key, &path, true)),
            _ => Err(<NodeError as de::Error>::custom(format!(
                "a mapping key must be a scalar, found {}",
                key.kind_name()
            ))
            .at(key, &path, true)),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, NodeError> {
        let (node, path) = self.value.take().ok_or_else(|| <NodeError as de::Error>::custom("value without a key"))?;
        seed.deserialize(NodeDeserializer { node, path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        a: Option<String>,
        list: Option<Vec<String>>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        name: String,
        inner: Option<Inner>,
    }

    #[test]
    fn keeps_the_spelling_of_numbers_and_booleans() {
        let root = parse("a: 007\nb: yes\nc: 1.10\nd: 0x1F\ne: \"q\"\nf:\ng: [1_000, x]\n").unwrap();
        let text = |k| root.entry(k).unwrap().1.as_str().map(str::to_owned);
        assert_eq!(text("a").as_deref(), Some("007"));
        assert_eq!(text("b").as_deref(), Some("yes"));
        assert_eq!(text("c").as_deref(), Some("1.10"));
        assert_eq!(text("d").as_deref(), Some("0x1F"));
        assert_eq!(text("e").as_deref(), Some("q"));
        assert_eq!(root.entry("f").unwrap().1.kind, NodeKind::Null);
        let NodeKind::Seq(items) = &root.entry("g").unwrap().1.kind else { panic!() };
        assert_eq!(items[0].as_str(), Some("1_000"));
    }

    #[test]
    fn typed_read_reports_line_and_path_of_the_innermost_failure() {
        let root = parse("name: x\ninner:\n  a: 1\n  typo: 2\n").unwrap();
        let err = from_node::<Outer>(&root).unwrap_err();
        assert_eq!((err.line, err.display_path().as_str(), err.at_key), (Some(4), "inner", true));
        assert!(err.message.starts_with("unknown field `typo`"), "{}", err.message);

        let root = parse("name: x\ninner:\n  a: 1\n  list:\n    - ok\n    - [nested]\n").unwrap();
        let err = from_node::<Outer>(&root).unwrap_err();
        assert_eq!((err.line, err.display_path().as_str()), (Some(6), "inner.list.1"));

        let root = parse("name: x\ninner: [1, 2]\n").unwrap();
        let err = from_node::<Outer>(&root).unwrap_err();
        assert_eq!((err.line, err.message.as_str()), (Some(2), "expected a mapping, found a list"));

        let root = parse("name: 42\ninner: {a: 007, list: [b]}\n").unwrap();
        let outer: Outer = from_node(&root).unwrap();
        assert_eq!(outer.name, "42");
        assert_eq!(outer.inner, Some(Inner { a: Some("007".into()), list: Some(vec!["b".into()]) }));
    }

    #[test]
    fn collecting_reports_every_bad_key_and_value_and_keeps_the_rest() {
        let root = parse("name: x\ntypo1: 1\ninner:\n  a: [1]\n  list: [ok, {no: 1}, fine]\n  typo2: 2\n").unwrap();
        let (outer, errors) = from_node_collecting::<Outer>(&root);
        let found: Vec<_> = errors.iter().map(|e| (e.line.unwrap(), e.display_path())).collect();
        assert_eq!(found, [(2, String::new()), (4, "inner.a".into()), (5, "inner.list.1".into()), (6, "inner".into())]);
        let outer = outer.unwrap();
        assert_eq!(outer.inner.unwrap().list.unwrap(), ["ok", "fine"]);

        let root = parse("- just\n- a list\n").unwrap();
        let (outer, errors) = from_node_collecting::<Outer>(&root);
        assert!(outer.is_none());
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn syntax_errors_have_a_line_and_no_source_text() {
        let err = parse("a: 1\nb: [unclosed, s3cret\n").unwrap_err();
        assert!(err.line.is_some(), "{err:?}");
        assert!(!err.message.contains("s3cret"), "{err:?}");
        let err = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(err.line, Some(2), "{err:?}");
    }
}
