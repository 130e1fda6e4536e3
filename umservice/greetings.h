/* greetings.h — the mailboxes' recorded greetings (standard and
 * out-of-office) as the UM service uses them: an index on the loop thread of
 * which greetings exist, so a deposit call for a mailbox without one (the
 * common case) starts its TTS greeting at once, and fetch/save of the audio
 * through the voicemail writer's thread (never SQLite on the loop).
 *
 * The index is loaded from voicemail.db at start-up and kept up to date by
 * greetings_save(); greetings_reload() reads it again (directory change).
 * Every function runs on the loop thread; handlers are called there. */
#ifndef OPENUM_GREETINGS_H
#define OPENUM_GREETINGS_H

#include <stdbool.h>

#include "common/vmstore.h"

struct audio_buf;
struct greetings;
struct vmwriter;

/* err 0 and pcm (borrowed: audio_buf_ref() to keep it), or a positive
 * errno: ENOENT (no such greeting), ECANCELED (closing), EIO... */
typedef void greetings_fetch_h(void *arg, int err, struct audio_buf *pcm);
/* err 0 when stored. */
typedef void greetings_save_h(void *arg, int err);

int greetings_alloc(struct greetings **out, struct vmwriter *vm);
/* Call after vmwriter_close (its callbacks may still refer to the index). */
void greetings_free(struct greetings *g);
void greetings_reload(struct greetings *g);
bool greetings_has(const struct greetings *g, const char *dialplan,
		   const char *mailbox, enum vm_greeting kind);
int greetings_fetch(struct greetings *g, const char *dialplan,
		    const char *mailbox, enum vm_greeting kind,
		    greetings_fetch_h *h, void *arg);
int greetings_save(struct greetings *g, const char *dialplan,
		   const char *mailbox, enum vm_greeting kind,
		   struct audio_buf *pcm, greetings_save_h *h, void *arg);

#endif
