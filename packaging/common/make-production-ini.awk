# Turns milter.ini.example into the packaged /etc/securelist/milter.ini.
# usage: awk -f make-production-ini.awk production.ini milter.ini.example
# For each (section, key, value) of production.ini, the first line of that section that sets the key,
# commented out ("# Key = x", "; Key = x") or not, becomes "Key = value"; a key the example lacks is
# added at the end of its section, a missing section at the end of the file. Everything else
# (all the documentation comments) is copied unchanged, so milter.ini stays the reference manual.
BEGIN { FS = "\t" }

FNR == NR {
    if ($0 ~ /^[[:space:]]*(#|$)/) next
    n++; sec[n] = $1; key[n] = $2; val[n] = $3
    next
}

FNR == 1 && !header {
    print "# /etc/securelist/milter.ini: generated from milter.ini.example with the package's production"
    print "# defaults (socket under /run/securelist, SQLite and keys under /var/lib/securelist)."
    print "# Reference: milter.ini(5). After editing [Policy]: systemctl reload securelist-milter;"
    print "# after editing any other section: systemctl restart securelist-milter"
    print ""
    header = 1
}

function flush(section,   i, saved) {
    saved = blanks; blanks = 0
    for (i = 1; i <= n; i++)
        if (tolower(sec[i]) == tolower(section) && !done[i]) { print key[i] " = " val[i]; done[i] = 1 }
    blanks = saved
}

# Blank lines are held back so keys added at the end of a section go before the gap to the next one.
function out(text) { while (blanks > 0) { print ""; blanks-- } print text }

{
    line = $0
    if (line ~ /^[[:space:]]*$/) { blanks++; next }
    if (match(line, /^[[:space:]]*\[[^]]+\][[:space:]]*$/)) {
        if (current != "") flush(current)
        current = line; gsub(/^[[:space:]]*\[|\][[:space:]]*$/, "", current)
        out(line)
        next
    }
    if (current != "" && match(line, /^[[:space:]]*[#;]?[[:space:]]*[A-Za-z][A-Za-z0-9_.]*[[:space:]]*=/)) {
        name = line
        sub(/^[[:space:]]*[#;]?[[:space:]]*/, "", name); sub(/[[:space:]]*=.*$/, "", name)
        for (i = 1; i <= n; i++) {
            if (!done[i] && tolower(sec[i]) == tolower(current) && tolower(key[i]) == tolower(name)) {
                out(key[i] " = " val[i]); done[i] = 1
                next
            }
        }
    }
    out(line)
}

END {
    if (current != "") flush(current)
    for (i = 1; i <= n; i++) {
        if (done[i]) continue
        if (!printed[tolower(sec[i])]++) print "\n[" sec[i] "]"
        print key[i] " = " val[i]; done[i] = 1
    }
}
