//! How tables look: plain columns separated by spaces, a header row, no
//! borders and no wrapping, so `awk`, `grep` and snapshots read them as
//! easily as people do.

use comfy_table::{ContentArrangement, Table, presets};

/// A table with `header`, ready for rows.
pub fn new(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.to_vec());
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table
}

/// The table as text, each line without trailing spaces, ending in a newline.
pub fn render(table: &Table) -> String {
    let mut out = String::new();
    for line in table.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// One section of the table output: a blank line, its heading, and a table
/// of `rows` under `header` when there are any.
pub fn section(out: &mut String, heading: String, header: &[&str], rows: Vec<Vec<String>>) {
    out.push('\n');
    out.push_str(&heading);
    out.push('\n');
    if rows.is_empty() {
        return;
    }
    let mut t = new(header);
    for row in rows {
        t.add_row(row);
    }
    out.push_str(&render(&t));
}
