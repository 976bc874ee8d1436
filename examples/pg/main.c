/* pg: command-line front end of libpaligemma. `pg help` lists the commands. */
#include "pg.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    { "caption", pg_cmd_caption, "pg caption -m MODEL IMAGE...        caption images" },
    { "ask", pg_cmd_ask, "pg ask -m MODEL IMAGE \"question\"    answer a question" },
    { "detect", pg_cmd_detect, "pg detect -m MODEL IMAGE \"cat ; dog\" [--json]  find boxes" },
    { "segment", pg_cmd_segment,
      "pg segment -m MODEL --vae vae-oid.npz IMAGE \"cat\" [--json]  find masks" },
    { "generate", pg_cmd_generate, "pg generate -m MODEL -i IMAGE -p PROMPT [options]" },
    { "tokenize", pg_cmd_tokenize,
      "pg tokenize (-m MODEL | -t TOKENIZER) [--no-parse-special] [--bos] (TEXT | --stdin)" },
    { "info", pg_cmd_info, "pg info -m MODEL [--json]            show the model variant" },
    { "bench", pg_cmd_bench, "pg bench [--variant 3b-448] [options] benchmark" },
    { "index", pg_cmd_index, "pg index -m MODEL DIR... [--db FILE] [--xmp]  catalogue photos" },
    { "search", pg_cmd_search, "pg search --db FILE \"dog on a beach\" [--json]  search it" },
#ifdef PG_HAVE_SERVE
    { "serve", pg_cmd_serve, "pg serve -m MODEL [--port 11434]      Ollama/OpenAI HTTP server" },
#endif
};

static int usage(FILE *f)
{
    fprintf(f, "usage: pg COMMAND [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        fprintf(f, "  %s\n", commands[i].help);
    }
    fprintf(f, "\n`pg COMMAND --help` shows a command's options.\n");
    return f == stderr ? 2 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        return usage(stderr);
    }
    if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        return usage(stdout);
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (!strcmp(argv[1], commands[i].name)) {
            return commands[i].fn(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "pg: unknown command '%s'\n", argv[1]);
    return usage(stderr);
}
