//! Variable headers (one per telemetry channel: name, type, offset in the row, array length, unit,
//! description), the table that finds them by name, and the typed [`Value`] read from a row.
//! Reads no env vars.

use std::collections::HashMap;
use std::fmt;

use super::error::IbtError;
use super::header::le_bytes;

/// Length of one variable header.
pub const VAR_HEADER_LEN: u64 = 144;

/// The type of a channel's elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VarType {
    /// One byte (`irsdk_char`).
    Char,
    /// One byte, non-zero = true.
    Bool,
    /// `i32`.
    Int,
    /// `u32` of flags (`irsdk_bitField`).
    Bitfield,
    /// `f32`.
    Float,
    /// `f64`.
    Double,
}

impl VarType {
    /// The type for the stored code (0–5), if known.
    pub fn from_code(code: i32) -> Option<Self> {
        Some(match code {
            0 => VarType::Char,
            1 => VarType::Bool,
            2 => VarType::Int,
            3 => VarType::Bitfield,
            4 => VarType::Float,
            5 => VarType::Double,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            VarType::Char | VarType::Bool => 1,
            VarType::Int | VarType::Bitfield | VarType::Float => 4,
            VarType::Double => 8,
        }
    }

    /// The name iRacing's SDK uses (`char`, `bool`, `int`, `bitfield`, `float`, `double`).
    pub fn name(self) -> &'static str {
        match self {
            VarType::Char => "char",
            VarType::Bool => "bool",
            VarType::Int => "int",
            VarType::Bitfield => "bitfield",
            VarType::Float => "float",
            VarType::Double => "double",
        }
    }
}

impl fmt::Display for VarType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One element of a channel, as stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Char(u8),
    Bool(bool),
    Int(i32),
    Bitfield(u32),
    Float(f32),
    Double(f64),
}

impl Value {
    /// Decodes one element of type `ty` from the start of `bytes` (unaligned, little-endian).
    pub fn decode(ty: VarType, bytes: &[u8]) -> Option<Value> {
        Some(match ty {
            VarType::Char => Value::Char(*bytes.first()?),
            VarType::Bool => Value::Bool(*bytes.first()? != 0),
            VarType::Int => Value::Int(i32::from_le_bytes(le_bytes(bytes, 0)?)),
            VarType::Bitfield => Value::Bitfield(u32::from_le_bytes(le_bytes(bytes, 0)?)),
            VarType::Float => Value::Float(f32::from_le_bytes(le_bytes(bytes, 0)?)),
            VarType::Double => Value::Double(f64::from_le_bytes(le_bytes(bytes, 0)?)),
        })
    }

    /// Any value as a number (bools are 0 or 1).
    pub fn as_f64(self) -> f64 {
        match self {
            Value::Char(v) => f64::from(v),
            Value::Bool(v) => f64::from(u8::from(v)),
            Value::Int(v) => f64::from(v),
            Value::Bitfield(v) => f64::from(v),
            Value::Float(v) => f64::from(v),
            Value::Double(v) => v,
        }
    }

    /// Integer-typed values (char, bool, int, bitfield) as `i64`; `None` for floats.
    pub fn as_i64(self) -> Option<i64> {
        match self {
            Value::Char(v) => Some(i64::from(v)),
            Value::Bool(v) => Some(i64::from(v)),
            Value::Int(v) => Some(i64::from(v)),
            Value::Bitfield(v) => Some(i64::from(v)),
            Value::Float(_) | Value::Double(_) => None,
        }
    }

    /// Bools as themselves, numbers as "non-zero".
    pub fn as_bool(self) -> bool {
        match self {
            Value::Bool(v) => v,
            other => other.as_f64() != 0.0,
        }
    }
}

impl fmt::Display for Value {
    /// Numbers as numbers (bools as `1`/`0`, chars as their code), floats in their shortest
    /// round-trip form: suitable for CSV.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Char(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{}", u8::from(*v)),
            Value::Int(v) => write!(f, "{v}"),
            Value::Bitfield(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Double(v) => write!(f, "{v}"),
        }
    }
}

/// One channel's description, validated against the row length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarHeader {
    pub name: String,
    pub desc: String,
    pub unit: String,
    pub var_type: VarType,
    /// Byte offset within a row.
    pub offset: usize,
    /// Number of elements (1 for scalars; 6 for the 360 Hz `…_ST` channels; 64 for `CarIdx…`).
    pub count: usize,
    /// The elements are successive samples in time (the 360 Hz channels), not an array of things.
    pub count_as_time: bool,
}

/// A NUL-terminated fixed-size string field.
fn c_str(field: &[u8]) -> &[u8] {
    field.split(|&b| b == 0).next().unwrap_or(field)
}

impl VarHeader {
    /// Parses the variable header `index` from its 144 bytes and checks it fits in a row of
    /// `row_len` bytes.
    pub fn parse(index: usize, bytes: &[u8], row_len: usize) -> Result<Self, IbtError> {
        let bad =
            |name: &str, problem: String| IbtError::InvalidVariable { index, name: name.into(), problem };
        let field = |at: usize| le_bytes::<4>(bytes, at).map(i32::from_le_bytes);
        let (Some(code), Some(offset), Some(count), Some(count_as_time), Some(name), Some(desc), Some(unit)) = (
            field(0),
            field(4),
            field(8),
            bytes.get(12),
            bytes.get(16..48),
            bytes.get(48..112),
            bytes.get(112..144),
        ) else {
            return Err(bad("?", "shorter than 144 bytes".into()));
        };
        let name = match std::str::from_utf8(c_str(name)) {
            Ok("") => return Err(bad("", "empty name".into())),
            Ok(name) if name.chars().any(char::is_control) => {
                return Err(bad(&name.escape_debug().to_string(), "control character in name".into()))
            }
            Ok(name) => name.to_owned(),
            Err(_) => {
                let lossy = String::from_utf8_lossy(c_str(name)).into_owned();
                return Err(bad(&lossy, "name is not UTF-8".into()));
            }
        };
        let var_type =
            VarType::from_code(code).ok_or_else(|| bad(&name, format!("unknown type code {code}")))?;
        let offset = usize::try_from(offset).map_err(|_| bad(&name, format!("negative offset {offset}")))?;
        let count = usize::try_from(count)
            .ok()
            .filter(|&c| c >= 1)
            .ok_or_else(|| bad(&name, format!("element count {count} (must be at least 1)")))?;
        let end = count.checked_mul(var_type.size()).and_then(|len| len.checked_add(offset));
        match end {
            Some(end) if end <= row_len => {}
            _ => {
                return Err(bad(
                    &name,
                    format!(
                        "{count} × {} bytes at offset {offset} reach past the {row_len}-byte row",
                        var_type.size()
                    ),
                ))
            }
        }
        Ok(VarHeader {
            name,
            desc: cp1252(c_str(desc)),
            unit: cp1252(c_str(unit)),
            var_type,
            offset,
            count,
            count_as_time: *count_as_time != 0,
        })
    }

    /// Bytes the channel takes in a row.
    pub fn byte_len(&self) -> usize {
        self.count * self.var_type.size()
    }

    /// Whether the channel holds more than one element.
    pub fn is_array(&self) -> bool {
        self.count > 1
    }

    /// A 360 Hz channel (`…_ST`): six samples per 60 Hz row.
    pub fn is_high_rate(&self) -> bool {
        self.name.ends_with("_ST")
    }

    /// Element `index` of this channel in `row` (the bytes of one row); `None` when `index` is
    /// past the channel's count or the row is shorter than the header promised.
    pub fn read(&self, row: &[u8], index: usize) -> Option<Value> {
        if index >= self.count {
            return None;
        }
        let size = self.var_type.size();
        let start = self.offset.checked_add(index.checked_mul(size)?)?;
        Value::decode(self.var_type, row.get(start..start.checked_add(size)?)?)
    }
}

/// Descriptions and units are cp1252 like the YAML (a `°` shows up as 0xB0).
fn cp1252(bytes: &[u8]) -> String {
    encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes).0.into_owned()
}

/// All variable headers of an input, in stored order, with a by-name index.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    list: Vec<VarHeader>,
    by_name: HashMap<String, usize>,
}

impl Vars {
    /// Builds the table; when a name repeats, lookups find the first.
    pub fn new(list: Vec<VarHeader>) -> Self {
        let mut by_name = HashMap::with_capacity(list.len());
        for (i, var) in list.iter().enumerate() {
            by_name.entry(var.name.clone()).or_insert(i);
        }
        Vars { list, by_name }
    }

    /// The channel called `name` (case-sensitive, as iRacing spells it).
    pub fn get(&self, name: &str) -> Option<&VarHeader> {
        self.by_name.get(name).and_then(|&i| self.list.get(i))
    }

    /// All channels in stored order.
    pub fn iter(&self) -> std::slice::Iter<'_, VarHeader> {
        self.list.iter()
    }

    pub fn as_slice(&self) -> &[VarHeader] {
        &self.list
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

impl<'a> IntoIterator for &'a Vars {
    type Item = &'a VarHeader;
    type IntoIter = std::slice::Iter<'a, VarHeader>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}
