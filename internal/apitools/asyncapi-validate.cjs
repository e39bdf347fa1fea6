// Validates AsyncAPI documents with the AsyncAPI project's parser
// (@asyncapi/parser), as the project's own tools do. Each argument is a
// file; the output is one JSON line per file:
//   {"file": ..., "diagnostics": [{"severity": 0-3, "code": ..., "message": ..., "path": [...]}]}
// Severity 0 is an error, 1 a warning, 2 information, 3 a hint. The exit
// status is 0 when the parser ran, whatever it found.
const fs = require('fs');
const { Parser } = require('@asyncapi/parser');

async function main() {
  const parser = new Parser();
  for (const file of process.argv.slice(2)) {
    const text = fs.readFileSync(file, 'utf8');
    const diagnostics = await parser.validate(text, { source: file });
    console.log(JSON.stringify({
      file,
      diagnostics: diagnostics.map((d) => ({ severity: d.severity, code: String(d.code), message: d.message, path: d.path })),
    }));
  }
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(2);
});
