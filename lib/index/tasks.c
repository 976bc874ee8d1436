/*
 * --tasks: "caption,detect:person ; dog,segment:cat" -> (name, prompt) pairs. The prompt is
 * what the model sees and what the resume key holds: "caption en" (or the caller's caption
 * prompt), "detect person ; dog", "segment cat".
 */
#include "index/index.h"

#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TASKS 16

static char *trimmed(const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t')) {
        s++, n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
        n--;
    }
    return pg__strndup(s, n);
}

static pg_status one_task(const char *s, size_t n, const char *caption_prompt, pg__task *t)
{
    const char *colon = memchr(s, ':', n);
    char *name = trimmed(s, colon ? (size_t)(colon - s) : n);
    char *arg = colon ? trimmed(colon + 1, n - (size_t)(colon - s) - 1) : NULL;
    pg_status st = PG_OK;
    if (!name || (colon && !arg)) {
        st = pg__error(PG_ERR_OUT_OF_MEMORY, "no memory");
    } else if (!strcmp(name, "caption")) {
        if (arg) {
            st = pg__error(PG_ERR_INVALID_ARGUMENT,
                           "task 'caption' takes no ':' argument (use the caption prompt)");
        } else {
            t->prompt = pg__strdup(caption_prompt ? caption_prompt : "caption en");
        }
    } else if (!strcmp(name, "detect") || !strcmp(name, "segment")) {
        if (!arg || !arg[0]) {
            st = pg__error(PG_ERR_INVALID_ARGUMENT, "task '%s' needs objects: %s:\"cat ; dog\"",
                           name, name);
        } else if ((t->prompt = pg__malloc(strlen(name) + strlen(arg) + 2)) != NULL) {
            sprintf(t->prompt, "%s %s", name, arg);
        }
    } else {
        st = pg__error(PG_ERR_INVALID_ARGUMENT,
                       "unknown task '%s' (known: caption, detect:OBJECTS, segment:OBJECTS)",
                       name);
    }
    if (st == PG_OK && !t->prompt) {
        st = pg__error(PG_ERR_OUT_OF_MEMORY, "no memory");
    }
    free(arg);
    if (st == PG_OK) {
        t->name = name;
    } else {
        free(name);
    }
    return st;
}

pg_status pg__tasks_parse(const char *spec, const char *caption_prompt, pg__task **out,
                          size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (!spec) {
        spec = "caption";
    }
    if (caption_prompt && !caption_prompt[0]) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "the caption prompt is empty");
    }
    pg__task *t = pg__calloc(MAX_TASKS, sizeof *t);
    if (!t) {
        return pg__error(PG_ERR_OUT_OF_MEMORY, "no memory");
    }
    size_t n = 0;
    pg_status st = PG_OK;
    for (const char *p = spec; st == PG_OK;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (n == MAX_TASKS) {
            st = pg__error(PG_ERR_LIMIT, "more than %d tasks", MAX_TASKS);
        } else if ((st = one_task(p, len, caption_prompt, &t[n])) == PG_OK) {
            for (size_t k = 0; k < n && st == PG_OK; k++) {
                if (!strcmp(t[k].prompt, t[n].prompt)) {
                    st = pg__error(PG_ERR_INVALID_ARGUMENT, "task '%s' is given twice",
                                   t[n].prompt);
                }
            }
            n++;
        }
        if (!comma) {
            break;
        }
        p = comma + 1;
    }
    if (st != PG_OK) {
        pg__tasks_free(t, n);
        return st;
    }
    *out = t;
    *n_out = n;
    return PG_OK;
}

void pg__tasks_free(pg__task *t, size_t n)
{
    for (size_t i = 0; t && i < n; i++) {
        free(t[i].name);
        free(t[i].prompt);
    }
    free(t);
}
