#!/usr/bin/env python3
"""CPU time of each party of bench/lists/run.sh, from /proc (utime + stime), so the list filter's extra cost
through Postfix is attributed in a way that a loaded machine does not distort (wall time does).

  cputime.py snap OUT SPEC...           SPEC = INST:postfix:MASTERPID (the master, its children by program
                                        name, and the children it has reaped) or INST:PARTY:PID (one process,
                                        all its threads)
  cputime.py diff BEFORE AFTER TAG N [INST:PARTY:SECONDS...] >>DELTAS
                                        one JSON line: the CPU seconds each party spent between the two
                                        snapshots (plus measured extras, e.g. smtp-source from time(1)),
                                        for N messages, under TAG (e.g. 16k)
  cputime.py report DELTAS TAG LABEL    prints ms per message per party and instance, summed over the rounds,
                                        and the per-round CPU ratio milter run / ref a
"""
import json
import os
import sys

TICK = os.sysconf("SC_CLK_TCK")
# Postfix programs shown on their own line; the rest of an instance's children go to "other".
PARTIES = ["smtp-source", "smtpd", "cleanup", "trivial-rewrite", "qmgr", "smtp", "smtp-sink", "securelist-milter",
           "master", "postlogd", "exited"]


def proc_table():
    table = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                s = f.read()
        except OSError:
            continue
        comm = s[s.index("(") + 1:s.rindex(")")]
        fields = s[s.rindex(")") + 2:].split()
        # fields[0] is state (field 3); utime..cstime are fields 14..17
        ppid = int(fields[1])
        own = (int(fields[11]) + int(fields[12])) / TICK
        reaped = (int(fields[13]) + int(fields[14])) / TICK
        table[int(pid)] = (ppid, comm, own, reaped)
    return table


def snap(out, specs):
    table = proc_table()
    result = {}
    for spec in specs:
        inst, party, pid = spec.split(":")
        pid = int(pid)
        parties = result.setdefault(inst, {})
        if party == "postfix":
            if pid in table:
                _, _, own, reaped = table[pid]
                parties["master"] = parties.get("master", 0.0) + own
                # children the master reaped (a process that ended, e.g. after max_idle) are no longer in /proc
                parties["exited"] = parties.get("exited", 0.0) + reaped
            for child, (ppid, comm, own, reaped) in table.items():
                if ppid == pid:
                    name = comm if comm in PARTIES else "other"
                    # a child's own reaped children (e.g. pipe's commands) count as the child's
                    parties[name] = parties.get(name, 0.0) + own + reaped
        elif pid in table:
            parties[party] = parties.get(party, 0.0) + table[pid][2]
    with open(out, "w") as f:
        json.dump(result, f)


def diff(before, after, tag, n, extras):
    with open(before) as f:
        b = json.load(f)
    with open(after) as f:
        a = json.load(f)
    delta = {}
    for inst, parties in a.items():
        for party, secs in parties.items():
            # a process that started between the snapshots counts from zero
            d = secs - b.get(inst, {}).get(party, 0.0)
            delta.setdefault(inst, {})[party] = max(d, 0.0)
    for e in extras:
        inst, party, secs = e.split(":")
        delta.setdefault(inst, {})[party] = delta.get(inst, {}).get(party, 0.0) + float(secs)
    print(json.dumps({"tag": tag, "msgs": int(n), "cpu": delta}))


def report(deltas, tag, label):
    rows = []
    with open(deltas) as f:
        for line in f:
            r = json.loads(line)
            if r["tag"] == tag:
                rows.append(r)
    if not rows:
        return
    insts = ["m", "a", "b"]
    total_msgs = {i: sum(r["msgs"] for r in rows if i in r["cpu"]) for i in insts}
    per = {i: {} for i in insts}
    for r in rows:
        for i in insts:
            for party, secs in r["cpu"].get(i, {}).items():
                per[i][party] = per[i].get(party, 0.0) + secs
    names = PARTIES + ["other"]

    def ms(i, p):
        return 1000.0 * per[i].get(p, 0.0) / max(total_msgs[i], 1)

    rounds = sum(1 for r in rows if "m" in r["cpu"])
    print(f"CPU ms per message, {label} (utime+stime from /proc, {rounds} rounds):")
    print(f"  {'party':<20} {'milter run':>10} {'ref a':>8} {'ref b':>8} {'run - ref a':>12}")
    for p in names:
        if all(ms(i, p) == 0 for i in insts):
            continue
        print(f"  {p:<20} {ms('m', p):10.2f} {ms('a', p):8.2f} {ms('b', p):8.2f} {ms('m', p) - ms('a', p):+12.2f}")
    tot = {i: sum(ms(i, p) for p in names) for i in insts}
    print(f"  {'total':<20} {tot['m']:10.2f} {tot['a']:8.2f} {tot['b']:8.2f} {tot['m'] - tot['a']:+12.2f}")
    # the rounds in order: the k-th milter run against the k-th ref a run (run.sh runs them back to back)
    m_rounds = [sum(r["cpu"]["m"].values()) / r["msgs"] for r in rows if "m" in r["cpu"]]
    a_rounds = [sum(r["cpu"]["a"].values()) / r["msgs"] for r in rows if "a" in r["cpu"]]
    ratios = [m / a for m, a in zip(m_rounds, a_rounds) if a > 0]
    if not ratios:
        return
    ratios.sort()
    med = ratios[len(ratios) // 2] if len(ratios) % 2 else (ratios[len(ratios) // 2 - 1] + ratios[len(ratios) // 2]) / 2
    print(f"cpu ratio milter/ref a, {label:<5}: {med:.2f} (rounds: {' '.join(f'{x:.2f}' for x in ratios)})")


def main(argv):
    if len(argv) >= 3 and argv[1] == "snap":
        snap(argv[2], argv[3:])
    elif len(argv) >= 6 and argv[1] == "diff":
        diff(argv[2], argv[3], argv[4], argv[5], argv[6:])
    elif len(argv) == 5 and argv[1] == "report":
        report(argv[2], argv[3], argv[4])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
