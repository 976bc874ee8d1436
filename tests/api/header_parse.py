"""Small parsers for include/paligemma.h shared by the api tests (no C preprocessor needed:
the public header is written plainly on purpose)."""
import re


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def read_header(path):
    with open(path, encoding="utf-8") as f:
        return strip_comments(f.read())


def functions(code):
    """Names declared with PG_API, in order."""
    code = re.sub(r"#\s*define\s+PG_API[^\n]*", " ", code)
    return re.findall(r"\bPG_API\b[^;(]*?\b(\w+)\s*\(", code)


def structs(code):
    """{name: [field names]} for every `typedef struct pg_x { ... } pg_x;`."""
    result = {}
    for name, body in re.findall(r"typedef\s+struct\s+(pg_\w+)\s*\{(.*?)\}\s*\1\s*;", code,
                                 flags=re.S):
        result[name] = [re.findall(r"[A-Za-z_]\w*", d)[-1] for d in body.split(";")
                        if d.strip()]
    return result


def enumerators(code):
    """({name: value} of every enumerator, [problems]). Every value must be explicit and a
    plain constant expression (digits, <<, |, +, -, parentheses; the `u` suffix is allowed)."""
    values, problems = {}, []
    for body in re.findall(r"\benum\b[^{;]*\{(.*?)\}", code, flags=re.S):
        for item in body.split(","):
            if not item.strip():
                continue
            m = re.match(r"\s*(PG_\w+)\s*=\s*(.+?)\s*$", item, flags=re.S)
            if not m:
                problems.append("enumerator without an explicit value: " + item.strip())
                continue
            expr = re.sub(r"(\d+)[uU]\b", r"\1", m.group(2))
            if not re.fullmatch(r"[\d\s<()+|-]+", expr):
                problems.append("enumerator value is not a plain constant: %s = %s"
                                % m.groups())
                continue
            values[m.group(1)] = eval(expr, {"__builtins__": {}})
    return values, problems
