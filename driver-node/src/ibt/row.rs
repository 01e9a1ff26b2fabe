//! One telemetry row (all channels at one tick) with typed accessors by channel name, and the
//! iterator over a recording's rows, which reads the file in chunks of rows rather than whole.
//! Reads no env vars.

use super::error::IbtError;
use super::source::Source;
use super::var::{Value, VarHeader, VarType, Vars};
use super::Ibt;

/// Rows are read from a file this many bytes at a time (at least one row).
const CHUNK_BYTES: usize = 256 * 1024;

/// The bytes of one row and the table to read them with. Typed accessors answer `None` when the
/// channel does not exist or has another type; they never panic.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    vars: &'a Vars,
    index: usize,
    tick_count: Option<i32>,
    bytes: Vec<u8>,
}

impl<'a> Row<'a> {
    pub(crate) fn new(vars: &'a Vars, index: usize, tick_count: Option<i32>, bytes: Vec<u8>) -> Self {
        Row { vars, index, tick_count, bytes }
    }

    /// Position of the row: record number in a file, or rank by tick (oldest first) in the live map.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The sim tick of a live buffer; `None` for file rows (see the `SessionTick` channel).
    pub fn tick_count(&self) -> Option<i32> {
        self.tick_count
    }

    /// The raw row.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The channel table of the input this row came from.
    pub fn vars(&self) -> &'a Vars {
        self.vars
    }

    /// Element `index` of `var`.
    pub fn value(&self, var: &VarHeader, index: usize) -> Option<Value> {
        var.read(&self.bytes, index)
    }

    /// All elements of `var`.
    pub fn values(&self, var: &VarHeader) -> Vec<Value> {
        (0..var.count).map_while(|i| var.read(&self.bytes, i)).collect()
    }

    /// The first (for scalars: the only) element of channel `name`.
    pub fn get(&self, name: &str) -> Option<Value> {
        self.value(self.vars.get(name)?, 0)
    }

    /// All elements of channel `name` (six for a 360 Hz `…_ST` channel).
    pub fn array(&self, name: &str) -> Option<Vec<Value>> {
        Some(self.values(self.vars.get(name)?))
    }

    fn typed<T>(&self, name: &str, ty: VarType, pick: fn(Value) -> Option<T>) -> Option<T> {
        let var = self.vars.get(name).filter(|v| v.var_type == ty)?;
        self.value(var, 0).and_then(pick)
    }

    fn typed_array<T>(&self, name: &str, ty: VarType, pick: fn(Value) -> Option<T>) -> Option<Vec<T>> {
        let var = self.vars.get(name).filter(|v| v.var_type == ty)?;
        (0..var.count).map(|i| self.value(var, i).and_then(pick)).collect()
    }

    /// A `float` channel.
    pub fn f32(&self, name: &str) -> Option<f32> {
        self.typed(name, VarType::Float, |v| if let Value::Float(x) = v { Some(x) } else { None })
    }

    /// A `double` channel, or a `float` one widened (exactly).
    pub fn f64(&self, name: &str) -> Option<f64> {
        match self.vars.get(name)?.var_type {
            VarType::Double | VarType::Float => self.get(name).map(Value::as_f64),
            _ => None,
        }
    }

    /// An `int` channel.
    pub fn i32(&self, name: &str) -> Option<i32> {
        self.typed(name, VarType::Int, |v| if let Value::Int(x) = v { Some(x) } else { None })
    }

    /// A `bool` channel.
    pub fn bool(&self, name: &str) -> Option<bool> {
        self.typed(name, VarType::Bool, |v| if let Value::Bool(x) = v { Some(x) } else { None })
    }

    /// A `bitfield` channel.
    pub fn bitfield(&self, name: &str) -> Option<u32> {
        self.typed(name, VarType::Bitfield, |v| if let Value::Bitfield(x) = v { Some(x) } else { None })
    }

    /// A `char` channel (its byte).
    pub fn char(&self, name: &str) -> Option<u8> {
        self.typed(name, VarType::Char, |v| if let Value::Char(x) = v { Some(x) } else { None })
    }

    /// Any channel as a number, whatever its type (bools 0/1).
    pub fn number(&self, name: &str) -> Option<f64> {
        self.get(name).map(Value::as_f64)
    }

    /// A `float` array channel (e.g. `SteeringWheelTorque_ST`, `CarIdxLapDistPct`).
    pub fn f32_array(&self, name: &str) -> Option<Vec<f32>> {
        self.typed_array(name, VarType::Float, |v| if let Value::Float(x) = v { Some(x) } else { None })
    }

    /// A `double` array channel.
    pub fn f64_array(&self, name: &str) -> Option<Vec<f64>> {
        self.typed_array(name, VarType::Double, |v| if let Value::Double(x) = v { Some(x) } else { None })
    }

    /// An `int` array channel (e.g. `CarIdxLap`).
    pub fn i32_array(&self, name: &str) -> Option<Vec<i32>> {
        self.typed_array(name, VarType::Int, |v| if let Value::Int(x) = v { Some(x) } else { None })
    }

    /// A `bool` array channel (e.g. `CarIdxOnPitRoad`).
    pub fn bool_array(&self, name: &str) -> Option<Vec<bool>> {
        self.typed_array(name, VarType::Bool, |v| if let Value::Bool(x) = v { Some(x) } else { None })
    }

    /// A `bitfield` array channel (e.g. `CarIdxSessionFlags`).
    pub fn bitfield_array(&self, name: &str) -> Option<Vec<u32>> {
        self.typed_array(name, VarType::Bitfield, |v| if let Value::Bitfield(x) = v { Some(x) } else { None })
    }
}

/// Every row of an input, oldest first. Yields an error (and then ends) if a read fails.
#[derive(Debug)]
pub struct Rows<'a, S> {
    ibt: &'a Ibt<S>,
    next: usize,
    end: usize,
    chunk: Vec<u8>,
    chunk_first: usize,
    chunk_rows: usize,
    failed: bool,
}

impl<'a, S: Source> Rows<'a, S> {
    pub(crate) fn new(ibt: &'a Ibt<S>) -> Self {
        Rows {
            ibt,
            next: 0,
            end: ibt.record_count(),
            chunk: Vec::new(),
            chunk_first: 0,
            chunk_rows: 0,
            failed: false,
        }
    }

    fn read_next(&mut self) -> Result<Row<'a>, IbtError> {
        let index = self.next;
        if !self.ibt.rows_are_contiguous() {
            return self.ibt.row(index);
        }
        let row_len = self.ibt.row_len();
        if !(self.chunk_first..self.chunk_first + self.chunk_rows).contains(&index) {
            let rows = (CHUNK_BYTES / row_len).min(self.end - index).max(1);
            self.chunk.resize(rows * row_len, 0);
            self.chunk_first = index;
            self.chunk_rows = 0;
            self.ibt.source().read_exact_at(self.ibt.row_offset(index)?, &mut self.chunk)?;
            self.chunk_rows = rows;
        }
        let start = (index - self.chunk_first) * row_len;
        let bytes = self
            .chunk
            .get(start..start + row_len)
            .map(<[u8]>::to_vec)
            .ok_or(IbtError::RowOutOfRange { index, count: self.end })?;
        Ok(Row::new(self.ibt.vars(), index, None, bytes))
    }
}

impl<'a, S: Source> Iterator for Rows<'a, S> {
    type Item = Result<Row<'a>, IbtError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.next >= self.end {
            return None;
        }
        let row = self.read_next();
        self.next += 1;
        self.failed = row.is_err();
        Some(row)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = if self.failed { 0 } else { self.end.saturating_sub(self.next) };
        (0, Some(left))
    }
}
