/* greetings.c — see greetings.h. The index is a sorted array of
 * "dialplan\x1fmailbox\x1fkind" keys; jobs carry copies of their strings
 * so they never depend on the index's memory. */
#define LOG_MODULE "greetings"
#include "umservice/greetings.h"
#include "common/directory.h"
#include "common/log.h"
#include "common/vmwriter.h"
#include "umservice/audio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct greetings {
	struct vmwriter *vm;
	char **keys;
	size_t n, cap;
	unsigned loading;	/* load jobs in flight */
	bool closed;
};

static const char *const kind_names[] = {"standard", "oof"};

static char *key_of(const char *dialplan, const char *mailbox,
		    enum vm_greeting kind)
{
	char *k = NULL;

	if (asprintf(&k, "%s\x1f%s\x1f%s", dialplan, mailbox,
		     kind_names[kind == VM_GREETING_OOF]) < 0)
		return NULL;
	return k;
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void index_clear(char **keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
}

/* Adds a key (taking it) unless present. */
static void index_add(char ***keys, size_t *n, size_t *cap, char *k)
{
	if (!k)
		return;
	if (*n && bsearch(&k, *keys, *n, sizeof **keys, cmp_key)) {
		free(k);
		return;
	}
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		char **p = realloc(*keys, nc * sizeof *p);

		if (!p) {
			free(k);
			return;
		}
		*keys = p;
		*cap = nc;
	}
	(*keys)[(*n)++] = k;
	qsort(*keys, *n, sizeof **keys, cmp_key);
}

/* ---- loading the index --------------------------------------------------- */

struct load_job {
	struct greetings *g;
	char **keys;
	size_t n, cap;
};

static void load_row(void *arg, const char *mailbox, const char *dialplan,
		     enum vm_greeting kind)
{
	struct load_job *j = arg;

	index_add(&j->keys, &j->n, &j->cap, key_of(dialplan, mailbox, kind));
}

static int load_run(struct vmstore *vs, void *arg)
{
	return vmstore_greeting_each(vs, load_row, arg);
}

static void load_done(int err, int64_t id, int64_t ms, void *arg)
{
	struct load_job *j = arg;
	struct greetings *g = j->g;

	(void)id;
	(void)ms;
	g->loading--;
	if (err) {
		if (err != ECANCELED)
			log_warn("cannot read the list of recorded greetings: %s",
				 strerror(err));
		index_clear(j->keys, j->n);
	} else {
		index_clear(g->keys, g->n);
		g->keys = j->keys;
		g->n = j->n;
		g->cap = j->cap;
		log_info("%zu recorded greeting%s", g->n, g->n == 1 ? "" : "s");
	}
	free(j);
	if (g->closed && !g->loading)
		free(g);
}

void greetings_reload(struct greetings *g)
{
	struct load_job *j = calloc(1, sizeof *j);

	if (!j)
		return;
	j->g = g;
	if (vmwriter_run(g->vm, load_run, load_done, j) != 0) {
		free(j);
		return;
	}
	g->loading++;
}

int greetings_alloc(struct greetings **out, struct vmwriter *vm)
{
	struct greetings *g = calloc(1, sizeof *g);

	if (!g)
		return ENOMEM;
	g->vm = vm;
	greetings_reload(g);
	*out = g;
	return 0;
}

void greetings_free(struct greetings *g)
{
	if (!g)
		return;
	index_clear(g->keys, g->n);
	g->keys = NULL;
	g->n = g->cap = 0;
	g->closed = true;
	if (!g->loading)
		free(g);
}

bool greetings_has(const struct greetings *g, const char *dialplan,
		   const char *mailbox, enum vm_greeting kind)
{
	char *k;
	bool found;

	if (!g || !g->n)
		return false;
	k = key_of(dialplan, mailbox, kind);
	if (!k)
		return false;
	found = bsearch(&k, g->keys, g->n, sizeof *g->keys, cmp_key) != NULL;
	free(k);
	return found;
}

/* ---- fetch and save ------------------------------------------------------- */

struct audio_job {
	char dialplan[DIR_NAME_MAX + 1], mailbox[32];
	enum vm_greeting kind;
	struct audio_buf *pcm;	/* fetch: the result; save: the audio */
	greetings_fetch_h *fetch_h;
	greetings_save_h *save_h;
	void *arg;
	struct greetings *g;	/* save: the index to update */
};

static int fetch_run(struct vmstore *vs, void *arg)
{
	struct audio_job *j = arg;
	int16_t *pcm = NULL;
	size_t n = 0;
	int err;

	err = vmstore_greeting_get(vs, j->mailbox, j->dialplan, j->kind, &pcm,
				   &n);
	if (!err && n == 0)
		err = ENOENT;
	if (!err)
		err = audio_buf_from(&j->pcm, pcm, n);
	free(pcm);
	return err;
}

static void fetch_done(int err, int64_t id, int64_t ms, void *arg)
{
	struct audio_job *j = arg;

	(void)id;
	(void)ms;
	j->fetch_h(j->arg, err, err ? NULL : j->pcm);
	audio_buf_unref(j->pcm);
	free(j);
}

static struct audio_job *job_new(const char *dialplan, const char *mailbox,
				 enum vm_greeting kind)
{
	struct audio_job *j;

	if (!dialplan || !mailbox || strlen(dialplan) >= sizeof j->dialplan ||
	    strlen(mailbox) >= sizeof j->mailbox)
		return NULL;
	j = calloc(1, sizeof *j);
	if (!j)
		return NULL;
	strcpy(j->dialplan, dialplan);
	strcpy(j->mailbox, mailbox);
	j->kind = kind;
	return j;
}

int greetings_fetch(struct greetings *g, const char *dialplan,
		    const char *mailbox, enum vm_greeting kind,
		    greetings_fetch_h *h, void *arg)
{
	struct audio_job *j = job_new(dialplan, mailbox, kind);
	int err;

	if (!j)
		return EINVAL;
	j->fetch_h = h;
	j->arg = arg;
	err = vmwriter_run(g->vm, fetch_run, fetch_done, j);
	if (err)
		free(j);
	return err;
}

static int save_run(struct vmstore *vs, void *arg)
{
	struct audio_job *j = arg;

	return vmstore_greeting_put(vs, j->mailbox, j->dialplan, j->kind,
				    audio_buf_pcm(j->pcm),
				    audio_buf_samples(j->pcm));
}

static void save_done(int err, int64_t id, int64_t ms, void *arg)
{
	struct audio_job *j = arg;

	(void)id;
	(void)ms;
	if (!err && j->g && !j->g->closed)
		index_add(&j->g->keys, &j->g->n, &j->g->cap,
			  key_of(j->dialplan, j->mailbox, j->kind));
	if (err && err != ECANCELED)
		log_error("greeting of mailbox %s (%s) not stored: %s",
			  j->mailbox, j->dialplan, strerror(err));
	if (j->save_h)
		j->save_h(j->arg, err);
	audio_buf_unref(j->pcm);
	free(j);
}

int greetings_save(struct greetings *g, const char *dialplan,
		   const char *mailbox, enum vm_greeting kind,
		   struct audio_buf *pcm, greetings_save_h *h, void *arg)
{
	struct audio_job *j = job_new(dialplan, mailbox, kind);
	int err;

	if (!j || !pcm) {
		free(j);
		return EINVAL;
	}
	j->pcm = audio_buf_ref(pcm);
	j->save_h = h;
	j->arg = arg;
	j->g = g;
	/* Finish and discard are always accepted by the writer; a greeting
	 * is rarer still, but it goes through the bounded queue: EAGAIN is
	 * reported to the caller, who says so. */
	err = vmwriter_run(g->vm, save_run, save_done, j);
	if (err) {
		audio_buf_unref(j->pcm);
		free(j);
	}
	return err;
}
