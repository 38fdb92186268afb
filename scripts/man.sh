#!/usr/bin/env bash
# Builds the manual pages into DIR (default .build/man): mirrord(8) and mirrorctl(8) from their
# swift-argument-parser declarations (the package's generate-manual tool), mirrord.conf(5) from the
# configuration key table (`mirrord conf-manual`); then tidies them for mdoc (one sentence a line,
# no blank lines) and, with mandoc at hand, checks that they render without warnings.
set -euo pipefail
DIR=${1:-.build/man}
SWIFT=${SWIFT:-swift}
DATE="$(LC_ALL=C date -u +'%B %-d, %Y')"
mkdir -p "$DIR"
"$SWIFT" build -c release --product generate-manual >/dev/null
for tool in mirrord mirrorctl; do
  .build/release/generate-manual ".build/release/$tool" --section 8 --authors "the mirrord developers" -o "$DIR" >/dev/null
done
.build/release/mirrord conf-manual --defaults config/mirrord.conf --date "$DATE" >"$DIR/mirrord.conf.5"
for page in "$DIR/mirrord.8" "$DIR/mirrorctl.8"; do
  # mdoc wants each sentence on a line of its own and no blank lines in running text; a paragraph
  # break just before a list item or a list's end (generate-manual writes one after an option whose
  # values it lists) is dropped, as mandoc would skip it with a warning.
  awk '/^$/ || /^\.Pp$/ { held = 1; next }
    { if (held && $0 !~ /^\.(It|El)( |$)/) print ".Pp"; held = 0 }
    /^\./ { print; next } { gsub(/\. +/, ".\n"); print }' "$page" >"$page.tidy"
  mv "$page.tidy" "$page"
done
if command -v mandoc >/dev/null; then
  for page in "$DIR"/*.[58]; do mandoc -T lint -W warning "$page"; done
fi
echo "man pages in $DIR: $(cd "$DIR" && echo *.[58])"
