/* The `pg` command-line tool: one file per command, dispatched by main.c. */
#ifndef PG_TOOL_H
#define PG_TOOL_H

#include <stdbool.h>

int pg_cmd_info(int argc, char **argv);     /* cmd_info.c:     pg info -m MODEL [--json] */
int pg_cmd_tokenize(int argc, char **argv); /* cmd_tokenize.c: pg tokenize ... */
int pg_cmd_caption(int argc, char **argv);  /* cmd_generate.c: pg caption -m MODEL IMAGE... */
int pg_cmd_ask(int argc, char **argv);      /* cmd_generate.c: pg ask -m MODEL IMAGE "q" */
int pg_cmd_generate(int argc, char **argv); /* cmd_generate.c: pg generate ... */
int pg_cmd_detect(int argc, char **argv);   /* cmd_detect.c:   pg detect -m MODEL IMAGE "a ; b" */
int pg_cmd_segment(int argc, char **argv);  /* cmd_segment.c:  pg segment -m MODEL --vae NPZ IMAGE "a" */
int pg_cmd_bench(int argc, char **argv);    /* cmd_bench.c:    pg bench ... */
int pg_cmd_index(int argc, char **argv);    /* cmd_index.c:    pg index -m MODEL DIR... */
int pg_cmd_search(int argc, char **argv);   /* cmd_index.c:    pg search --db FILE QUERY */
int pg_cmd_serve(int argc, char **argv);    /* cmd_serve.c:    pg serve -m MODEL ... */

/* cli_args.c: a decimal in [0, max], nothing else (no sign, no trailing text). */
bool pg_cli_parse_uint(const char *s, unsigned long max, unsigned long *out);

#endif
