//! CSV answers for the live lists (`?format=csv`): RFC 4180 quoting, and text that a
//! spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) is prefixed with `'`.
//! Fleet data is untrusted, and a CSV is opened in spreadsheets.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// One value of a row.
pub enum Cell<'a> {
    Text(&'a str),
    Number(f64),
    Missing,
}

#[derive(Default)]
pub struct Csv(String);

impl Csv {
    pub fn new(header: &[&str]) -> Self {
        let mut csv = Self::default();
        csv.row(header.iter().map(|name| Cell::Text(name)));
        csv
    }

    pub fn row<'a>(&mut self, cells: impl IntoIterator<Item = Cell<'a>>) {
        for (index, cell) in cells.into_iter().enumerate() {
            if index > 0 {
                self.0.push(',');
            }
            match cell {
                Cell::Text(text) => self.text(text),
                Cell::Number(value) if value.is_finite() => self.0.push_str(&value.to_string()),
                Cell::Number(_) | Cell::Missing => {}
            }
        }
        self.0.push_str("\r\n");
    }

    fn text(&mut self, text: &str) {
        let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
        let quote = formula || text.contains([',', '"', '\n', '\r']);
        if quote {
            self.0.push('"');
        }
        if formula {
            self.0.push('\'');
        }
        self.0.push_str(&text.replace('"', "\"\""));
        if quote {
            self.0.push('"');
        }
    }

    /// The CSV as a download named `<name>.csv`.
    pub fn response(self, name: &str) -> Response {
        (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}.csv\"")),
            ],
            self.0,
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_what_needs_it_and_disarms_formulas() {
        let mut csv = Csv::new(&["id", "value"]);
        csv.row([Cell::Text("a,b"), Cell::Number(1.5)]);
        csv.row([Cell::Text("=HYPERLINK(\"x\")"), Cell::Missing]);
        csv.row([Cell::Text("plain"), Cell::Number(f64::NAN)]);
        assert_eq!(csv.0, "id,value\r\n\"a,b\",1.5\r\n\"'=HYPERLINK(\"\"x\"\")\",\r\nplain,\r\n");
    }
}
