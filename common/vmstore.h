/* vmstore.h — the mailbox store (voicemail.db, SQLite in WAL mode): voice
 * messages recorded in one-second chunks so a crash never loses a message,
 * their metadata and state, greetings, and a WAV writer. Synchronous: the
 * daemons reach it through vmwriter (a worker thread), umctl directly. */
#ifndef OPENUM_VMSTORE_H
#define OPENUM_VMSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmstore;

/* The schema version this build writes (PRAGMA user_version). */
#define VMSTORE_SCHEMA_VERSION 1
/* Audio is 16-bit signed linear PCM, mono, 8 kHz, little-endian in BLOBs. */
#define VMSTORE_RATE 8000
#define VMSTORE_FORMAT "pcm16le-8k"
/* vmstore_finish: keep all the audio. */
#define VMSTORE_KEEP_ALL SIZE_MAX

enum vm_state {
	VM_STATE_ANY = 0,  /* filters only */
	VM_STATE_RECORDING,
	VM_STATE_NEW,
	VM_STATE_SAVED,
	VM_STATE_DELETED,
};

enum vm_greeting {
	VM_GREETING_STANDARD,
	VM_GREETING_OOF,
};

/* What vmstore_begin records about a message. Strings are copied; NULL is
 * stored as "". */
struct vm_meta {
	const char *mailbox;        /* extension, required */
	const char *dialplan;       /* dial plan name, required */
	const char *caller_number;
	const char *caller_name;
	const char *call_id;        /* SIP Call-ID */
	int64_t received_utc_ms;    /* unix ms; 0 = now */
	bool urgent;
};

/* One message's metadata as listed (no audio). Strings are malloc'd and
 * owned by the array: free with vmstore_messages_free(). */
struct vm_message {
	int64_t id;
	char *mailbox, *dialplan, *caller_number, *caller_name, *call_id;
	int64_t received_utc_ms;
	int64_t duration_ms;
	enum vm_state state;
	bool urgent;
	bool recovered;             /* finished by vmstore_recover */
	bool has_transcript;
};

/* Message waiting counts of a mailbox (RFC 3842): new = state new, old =
 * state saved; the urgent ones are also in new/old. */
struct vm_counts {
	unsigned new_msgs, old_msgs, urgent_new, urgent_old;
};

/* List filter; a zeroed struct lists everything. */
struct vm_filter {
	const char *mailbox;        /* NULL = any */
	const char *dialplan;       /* NULL = any */
	enum vm_state state;        /* VM_STATE_ANY = any */
};

/* ---- open / close -------------------------------------------------------- */

int vmstore_open(struct vmstore **out, const char *path, char **cause);
void vmstore_close(struct vmstore *vs);

/* ---- recording (one thread per connection; see vmwriter) ------------------ */

int vmstore_begin(struct vmstore *vs, const struct vm_meta *meta,
		  int64_t *id);
int vmstore_append(struct vmstore *vs, int64_t id, uint32_t seq,
		   const int16_t *pcm, size_t samples);
int vmstore_finish(struct vmstore *vs, int64_t id, size_t keep_samples,
		   int64_t *duration_ms);
int vmstore_discard(struct vmstore *vs, int64_t id);
int vmstore_recover(struct vmstore *vs, unsigned *n);

/* ---- reading and managing messages ---------------------------------------- */

int vmstore_list(struct vmstore *vs, const struct vm_filter *f,
		 struct vm_message **out, size_t *n);
int vmstore_get(struct vmstore *vs, int64_t id, struct vm_message **out);
void vmstore_messages_free(struct vm_message *m, size_t n);
int vmstore_counts(struct vmstore *vs, const char *mailbox,
		   const char *dialplan, struct vm_counts *out);
int vmstore_get_audio(struct vmstore *vs, int64_t id, int16_t **pcm,
		      size_t *samples);
int vmstore_set_state(struct vmstore *vs, int64_t id, enum vm_state state);
int vmstore_delete(struct vmstore *vs, int64_t id);
int vmstore_purge(struct vmstore *vs, int64_t id);

const char *vmstore_state_name(enum vm_state s);
int vmstore_state_parse(const char *s, enum vm_state *out);

/* ---- greetings ------------------------------------------------------------- */

int vmstore_greeting_put(struct vmstore *vs, const char *mailbox,
			 const char *dialplan, enum vm_greeting kind,
			 const int16_t *pcm, size_t samples);
int vmstore_greeting_get(struct vmstore *vs, const char *mailbox,
			 const char *dialplan, enum vm_greeting kind,
			 int16_t **pcm, size_t *samples);
typedef void vmstore_greeting_h(void *arg, const char *mailbox,
				const char *dialplan, enum vm_greeting kind);
int vmstore_greeting_each(struct vmstore *vs, vmstore_greeting_h *h,
			  void *arg);
int vmstore_greeting_delete(struct vmstore *vs, const char *mailbox,
			    const char *dialplan, enum vm_greeting kind);

/* ---- files ----------------------------------------------------------------- */

int vmstore_write_wav(const char *path, const int16_t *pcm, size_t samples,
		      unsigned rate);

#endif
