//! Requests in: JSON bodies checked field by field, rows turned into the table a CSV file
//! would give, uploaded files (raw bodies or base64), and the 4xx/5xx answers of everything
//! that is wrong with them.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use sora_data::{DataError, Table};
use sora_jobs::{ColumnType, Input, InputColumn, InputSchema, JobError, ModelInfo, NamedFile};

/// A 4xx/5xx answer with a JSON body: `{"error": …, "row": …, "column": …, "field": …}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    message: String,
    pub(crate) row: Option<usize>,
    column: Option<String>,
    field: Option<String>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            row: None,
            column: None,
            field: None,
        }
    }

    pub(crate) fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn row(mut self, row: usize) -> Self {
        self.row = Some(row);
        self
    }

    pub(crate) fn column(mut self, column: &str) -> Self {
        self.column = Some(column.to_string());
        self
    }

    pub(crate) fn field(mut self, field: &str) -> Self {
        self.field = Some(field.to_string());
        self
    }

    /// The message.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// The scoring thread is gone (the server is stopping).
    pub(crate) fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the scoring thread has stopped",
        )
    }

    /// A body over `--max-body-bytes`: 413.
    pub(crate) fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is over the size limit (--max-body-bytes)",
        )
    }

    /// A failure of the model on input it accepted, or of the model itself: 500.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The answer to a job's error on a request's input: a verb the kind does not have is
    /// 422, an option out of range 400 naming the field, a cell that does not parse 422
    /// naming the row and column, any other bad input 400 or 422; failures of the model
    /// itself (training, weights) 500.
    pub(crate) fn from_job(e: &JobError) -> Self {
        match e {
            JobError::Data(d) => data_error(d),
            JobError::InvalidOption { field, .. } => Self::bad(e.to_string()).field(field),
            JobError::OptionNotForKind { .. } | JobError::WrongInput { .. } => {
                Self::bad(e.to_string())
            }
            JobError::Unsupported { .. } | JobError::Kind(_) | JobError::Explain(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
            }
            _ => Self::internal(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message });
        if let Some(row) = self.row {
            body["row"] = json!(row);
        }
        if let Some(column) = self.column {
            body["column"] = json!(column);
        }
        if let Some(field) = self.field {
            body["field"] = json!(field);
        }
        (self.status, json_body(&body)).into_response()
    }
}

/// A JSON body with its content type.
pub(crate) fn json_body(value: &Value) -> ([(header::HeaderName, HeaderValue); 1], String) {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        value.to_string(),
    )
}

/// A pipeline error about a cell of a request table, named by row (0-based) and column.
fn data_error(e: &DataError) -> ApiError {
    match e {
        DataError::NotNumeric { line, column, .. } | DataError::NonFinite { line, column, .. } => {
            let row = (*line).saturating_sub(2) as usize;
            let message = e.to_string();
            let message = message
                .split_once(": ")
                .and_then(|(_, rest)| rest.split_once(": "))
                .map_or(message.clone(), |(_, rest)| rest.to_string());
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
                .row(row)
                .column(column)
        }
        _ => ApiError::bad(e.to_string()),
    }
}

/// The body's bytes, or the answer to a body that could not be read (413 over the limit).
pub(crate) fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large()
        } else {
            let message = format!("could not read the request body: {}", rejection.body_text());
            ApiError::new(status, message)
        }
    })
}

/// The body as a JSON object with only `allowed` fields.
pub(crate) fn parse_object(body: &[u8], allowed: &[&str]) -> Result<Map<String, Value>, ApiError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("malformed JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(ApiError::bad(format!(
            "expected a JSON object with {}, found {}",
            allowed
                .iter()
                .map(|f| format!("\"{f}\""))
                .collect::<Vec<_>>()
                .join(", "),
            type_name(&value)
        )));
    };
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad(format!(
            "unknown field {unknown:?}; expected {}",
            allowed.join(", ")
        )));
    }
    Ok(map)
}

pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `"one": {…}` or `"many": [{…}, …]`, at most `max` of them, none empty.
pub(crate) fn one_or_many(
    envelope: &Map<String, Value>,
    (one, many): (&str, &str),
    max: usize,
) -> Result<Vec<Value>, ApiError> {
    let items: Vec<Value> = match (envelope.get(one), envelope.get(many)) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad(format!(
                "give either \"{one}\" or \"{many}\", not both"
            )));
        }
        (Some(item), None) => vec![item.clone()],
        (None, Some(Value::Array(items))) => items.clone(),
        (None, Some(other)) => {
            return Err(ApiError::bad(format!(
                "{many}: expected an array, found {}",
                type_name(other)
            ))
            .field(many));
        }
        (None, None) => {
            return Err(ApiError::bad(format!(
                "no {many}: expected \"{one}\": {{…}} or \"{many}\": [{{…}}, …]"
            )));
        }
    };
    if items.is_empty() {
        return Err(ApiError::bad(format!("{many}: the batch is empty")).field(many));
    }
    if items.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{many}: {} {many} in one request, over the limit of {max} (--max-rows)",
                items.len()
            ),
        )
        .field(many));
    }
    Ok(items)
}

/// The input of a request to a model: rows of columns (`"row"`/`"rows"`), or files
/// (`"file"`/`"files"` as `{"name", "base64"}` objects) for a model of files.
pub(crate) fn input_of(
    info: &ModelInfo,
    envelope: &Map<String, Value>,
    max_rows: usize,
) -> Result<Input, ApiError> {
    match &info.input {
        InputSchema::Columns { columns } => {
            let rows = one_or_many(envelope, ("row", "rows"), max_rows)?;
            Ok(Input::Table(table_of(info, columns, &rows)?))
        }
        InputSchema::Files { .. } => {
            let files = one_or_many(envelope, ("file", "files"), max_rows)?;
            Ok(Input::Files(files_of(&files)?))
        }
        InputSchema::Prompt { .. } => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "{} models take a prompt: POST /v1/generate {{\"prompt\": …}}",
                info.kind
            ),
        )),
    }
}

/// The fields of a request to a model of `info`'s input.
pub(crate) fn input_fields(info: &ModelInfo) -> &'static [&'static str] {
    match info.input {
        InputSchema::Files { .. } => &["file", "files"],
        _ => &["row", "rows"],
    }
}

/// The rows as a table of raw cells, as a CSV file would give them to the model: every
/// column present, no other, values of the column's type, `null` as the missing-value marker.
fn table_of(info: &ModelInfo, columns: &[InputColumn], rows: &[Value]) -> Result<Table, ApiError> {
    let expected = || {
        columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut cells = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let Value::Object(row) = row else {
            return Err(ApiError::bad(format!(
                "expected a row object of column: value, found {}",
                type_name(row)
            ))
            .row(i));
        };
        if let Some(unknown) = row.keys().find(|k| !columns.iter().any(|c| &c.name == *k)) {
            let target = if info.target.as_deref() == Some(unknown.as_str()) {
                " (the target column is predicted, not given)"
            } else {
                ""
            };
            return Err(ApiError::bad(format!(
                "unknown column `{unknown}`{target}; the model takes {}",
                expected()
            ))
            .row(i)
            .column(unknown));
        }
        let mut row_cells = Vec::with_capacity(columns.len());
        for c in columns {
            let value = row.get(&c.name).ok_or_else(|| {
                let hint = if c.missing_marker.is_some() {
                    " (send null for a missing value)"
                } else {
                    ""
                };
                ApiError::bad(format!("missing column `{}`{hint}", c.name))
                    .row(i)
                    .column(&c.name)
            })?;
            let wanted = match c.kind {
                ColumnType::Number => "a number or null",
                ColumnType::Text => "a string",
                ColumnType::Category | ColumnType::Id => "a string, a number or null",
            };
            let cell = match (value, c.kind) {
                (Value::Null, _) => c.missing_marker.clone().ok_or_else(|| {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!("column `{}`: a missing value is {}", c.name, c.missing),
                    )
                    .row(i)
                    .column(&c.name)
                })?,
                (Value::Number(n), ColumnType::Number | ColumnType::Category | ColumnType::Id) => {
                    n.to_string()
                }
                (Value::String(s), ColumnType::Category | ColumnType::Id | ColumnType::Text) => {
                    s.clone()
                }
                (other, _) => {
                    return Err(ApiError::bad(format!(
                        "column `{}`: expected {wanted}, found {}",
                        c.name,
                        type_name(other)
                    ))
                    .row(i)
                    .column(&c.name));
                }
            };
            row_cells.push(cell);
        }
        cells.push(row_cells);
    }
    let headers = columns.iter().map(|c| c.name.clone()).collect();
    Table::from_rows("request", headers, cells).map_err(|e| data_error(&e))
}

/// Files sent as `{"name": …, "base64": …}` objects.
fn files_of(items: &[Value]) -> Result<Vec<NamedFile>, ApiError> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let bad = |message: String| ApiError::bad(message).row(i);
            let Value::Object(file) = item else {
                return Err(bad(format!(
                    "expected a file object {{\"name\", \"base64\"}}, found {}",
                    type_name(item)
                )));
            };
            if let Some(unknown) = file.keys().find(|k| *k != "name" && *k != "base64") {
                return Err(bad(format!(
                    "unknown field {unknown:?} of a file; expected name, base64"
                )));
            }
            let name = match file.get("name") {
                None | Some(Value::Null) => format!("file {i}"),
                Some(Value::String(s)) => s.clone(),
                Some(other) => {
                    return Err(bad(format!(
                        "name: expected a string, found {}",
                        type_name(other)
                    ))
                    .field("name"));
                }
            };
            let Some(Value::String(data)) = file.get("base64") else {
                return Err(
                    bad("base64: expected the file's bytes as a base64 string".into())
                        .field("base64"),
                );
            };
            let bytes = sora_jobs::base64::decode(data).ok_or_else(|| {
                bad(format!("base64 of {name:?}: not valid base64")).field("base64")
            })?;
            Ok(NamedFile { name, bytes })
        })
        .collect()
}

/// A raw upload: the body is the file (`Content-Type` image/…, audio/…, or
/// application/octet-stream), named by the `X-File-Name` header.
pub(crate) fn raw_file(headers: &HeaderMap, body: &[u8]) -> Option<NamedFile> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let raw = content_type.starts_with("image/")
        || content_type.starts_with("audio/")
        || content_type.starts_with("application/octet-stream");
    raw.then(|| NamedFile {
        name: headers
            .get("x-file-name")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("upload")
            .to_string(),
        bytes: body.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_an_object_or_a_non_empty_array_within_the_limit() {
        let parse = |s: &str| -> Map<String, Value> { serde_json::from_str(s).unwrap() };
        let many = |s: &str, max| one_or_many(&parse(s), ("row", "rows"), max);
        assert_eq!(many(r#"{"row": {"a": 1}}"#, 4).unwrap().len(), 1);
        assert_eq!(
            many(r#"{"rows": [{"a": 1}, {"a": 2}]}"#, 4).unwrap().len(),
            2
        );
        let e = many(r#"{"rows": []}"#, 4).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = many(r#"{"rows": [{}, {}, {}]}"#, 2).unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(many(r#"{"row": {}, "rows": []}"#, 4).is_err());
    }
}
