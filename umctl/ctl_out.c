/* ctl_out.c — formatting of umctl output. Text: one "Label  Value" line per
 * field for one object, a table with a column per field for several.
 * JSON: Exchange labels as keys, booleans as true/false, numbers as numbers,
 * lists as arrays of strings. */
#include "umctl/ctl_out.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* dir_obj_get callback: copies one object into a struct ctl_objs. */
int ctl_out_collect_h(const struct dir_value *vals, size_t n, void *arg)
{
	struct ctl_objs *o = arg;
	struct ctl_obj *ob;

	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 8;
		struct ctl_obj *v = realloc(o->obj, cap * sizeof *v);

		if (!v)
			return ENOMEM;
		o->obj = v;
		o->cap = cap;
	}
	ob = &o->obj[o->n];
	memset(ob, 0, sizeof *ob);
	for (size_t i = 0; i < n && i < CTL_OUT_MAX_FIELDS; i++) {
		ob->field[i] = vals[i].field;
		ob->value[i] = strdup(vals[i].value ? vals[i].value : "");
		if (!ob->value[i]) {
			ob->n = i;
			o->n++;
			return ENOMEM;
		}
	}
	ob->n = n < CTL_OUT_MAX_FIELDS ? n : CTL_OUT_MAX_FIELDS;
	o->n++;
	return 0;
}

/* Frees what ctl_out_collect_h gathered (not o itself). */
void ctl_out_objs_free(struct ctl_objs *o)
{
	for (size_t i = 0; i < o->n; i++) {
		for (size_t k = 0; k < o->obj[i].n; k++)
			free(o->obj[i].value[k]);
	}
	free(o->obj);
	memset(o, 0, sizeof *o);
}

/* Writes s as a JSON string: quotes, backslashes and control characters
 * escaped, UTF-8 passed through. */
void ctl_out_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)(s ? s : "");
	     *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

static void json_value(FILE *f, const struct dir_field *fd, const char *v)
{
	switch (fd->kind) {
	case DIR_KIND_BOOL:
		fputs(strcmp(v, "True") == 0 ? "true" : "false", f);
		return;
	case DIR_KIND_INT:
		if (*v && strspn(v, "0123456789-") == strlen(v)) {
			fputs(v, f);
			return;
		}
		break;
	case DIR_KIND_LIST: {
		const char *p = v;
		bool first = true;

		fputc('[', f);
		while (*p) {
			size_t n = strcspn(p, ",");
			char item[1024];

			snprintf(item, sizeof item, "%.*s", (int)n, p);
			if (!first)
				fputc(',', f);
			ctl_out_json_string(f, item);
			first = false;
			p += n + (p[n] == ',');
		}
		fputc(']', f);
		return;
	}
	default:
		break;
	}
	ctl_out_json_string(f, v);
}

static void json_object(FILE *f, const struct ctl_obj *ob)
{
	fputc('{', f);
	for (size_t i = 0; i < ob->n; i++) {
		if (i)
			fputc(',', f);
		ctl_out_json_string(f, ob->field[i]->label);
		fputc(':', f);
		json_value(f, ob->field[i], ob->value[i]);
	}
	fputc('}', f);
}

/* Prints objects: single (a singleton or one named object) as one object,
 * else as a list. Text lists are columns with a header line. */
void ctl_out_objects(FILE *f, const struct ctl_objs *o, bool json,
		     bool single)
{
	if (json) {
		if (single && o->n == 1) {
			json_object(f, &o->obj[0]);
		} else {
			fputc('[', f);
			for (size_t i = 0; i < o->n; i++) {
				if (i)
					fputc(',', f);
				json_object(f, &o->obj[i]);
			}
			fputc(']', f);
		}
		fputc('\n', f);
		return;
	}
	if (o->n == 0)
		return;
	if (single && o->n == 1) {
		const struct ctl_obj *ob = &o->obj[0];
		size_t w = 0;

		for (size_t i = 0; i < ob->n; i++) {
			size_t l = strlen(ob->field[i]->label);

			if (l > w)
				w = l;
		}
		for (size_t i = 0; i < ob->n; i++) {
			if (ob->value[i][0])
				fprintf(f, "%-*s %s\n", (int)w,
					ob->field[i]->label, ob->value[i]);
			else
				fprintf(f, "%s\n", ob->field[i]->label);
		}
		return;
	}
	{
		const struct ctl_obj *h = &o->obj[0];
		size_t w[CTL_OUT_MAX_FIELDS];

		for (size_t k = 0; k < h->n; k++) {
			w[k] = strlen(h->field[k]->label);
			for (size_t i = 0; i < o->n; i++) {
				size_t l = k < o->obj[i].n
						   ? strlen(o->obj[i].value[k])
						   : 0;

				if (l > w[k])
					w[k] = l;
			}
		}
		for (size_t k = 0; k < h->n; k++) {
			if (k + 1 < h->n)
				fprintf(f, "%-*s  ", (int)w[k],
					h->field[k]->label);
			else
				fprintf(f, "%s\n", h->field[k]->label);
		}
		for (size_t i = 0; i < o->n; i++) {
			for (size_t k = 0; k < h->n && k < o->obj[i].n; k++) {
				if (k + 1 < h->n)
					fprintf(f, "%-*s  ", (int)w[k],
						o->obj[i].value[k]);
				else
					fprintf(f, "%s\n", o->obj[i].value[k]);
			}
		}
	}
}

static const char *family_name(Openum__AddressFamily af)
{
	switch (af) {
	case OPENUM__ADDRESS_FAMILY__AF_IPV4:
		return "IPv4";
	case OPENUM__ADDRESS_FAMILY__AF_IPV6:
		return "IPv6";
	default:
		return "unspec";
	}
}

static const char *transport_name(Openum__Transport t)
{
	switch (t) {
	case OPENUM__TRANSPORT__TRANSPORT_UDP:
		return "udp";
	case OPENUM__TRANSPORT__TRANSPORT_TCP:
		return "tcp";
	case OPENUM__TRANSPORT__TRANSPORT_TLS:
		return "tls";
	default:
		return "unspec";
	}
}

static void text_endpoints(FILE *f, Openum__SipEndpoint *const *ep, size_t n)
{
	if (n == 0)
		fputs("(none)", f);
	for (size_t i = 0; i < n; i++) {
		bool v6 = ep[i]->family == OPENUM__ADDRESS_FAMILY__AF_IPV6 ||
			  strchr(ep[i]->host ? ep[i]->host : "", ':');

		fprintf(f, "%s%s %s%s%s:%u", i ? ", " : "",
			transport_name(ep[i]->transport), v6 ? "[" : "",
			ep[i]->host ? ep[i]->host : "", v6 ? "]" : "",
			ep[i]->port);
	}
	fputc('\n', f);
}

static void json_endpoints(FILE *f, Openum__SipEndpoint *const *ep, size_t n)
{
	fputc('[', f);
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%s{\"family\":\"%s\",\"transport\":\"%s\","
			   "\"host\":",
			i ? "," : "", family_name(ep[i]->family),
			transport_name(ep[i]->transport));
		ctl_out_json_string(f, ep[i]->host);
		fprintf(f, ",\"port\":%u}", ep[i]->port);
	}
	fputc(']', f);
}

/* Prints the router's status reply: its pid and endpoints, then each UM
 * service instance. */
void ctl_out_status(FILE *f, const Openum__StatusReply *r, bool json)
{
	if (json) {
		fprintf(f, "{\"router\":{\"pid\":%u,\"endpoints\":",
			r->router_pid);
		json_endpoints(f, r->router_endpoints, r->n_router_endpoints);
		fprintf(f, "},\"instances\":[");
		for (size_t i = 0; i < r->n_instances; i++) {
			const Openum__InstanceStatus *in = r->instances[i];

			fprintf(f, "%s{\"instance_id\":", i ? "," : "");
			ctl_out_json_string(f, in->instance_id);
			fprintf(f, ",\"pid\":%u,\"endpoints\":", in->pid);
			json_endpoints(f, in->endpoints, in->n_endpoints);
			fprintf(f, ",\"max_calls_allowed\":%u,"
				   "\"active_calls\":%u,\"accepting\":%s,"
				   "\"calls_routed\":%llu,\"redirects_resent\":%llu,"
				   "\"ack_timeouts\":%llu,\"passed_over_ms\":%u,\"fqdn\":",
				in->max_calls_allowed, in->active_calls,
				in->accepting ? "true" : "false",
				(unsigned long long)in->calls_routed,
				(unsigned long long)in->redirects_resent,
				(unsigned long long)in->ack_timeouts, in->passed_over_ms);
			ctl_out_json_string(f, in->fqdn);
			fputc('}', f);
		}
		fprintf(f, "]}\n");
		return;
	}
	fprintf(f, "umcallrouter\n  Pid              %u\n  Endpoints        ",
		r->router_pid);
	text_endpoints(f, r->router_endpoints, r->n_router_endpoints);
	fprintf(f, "UM service instances: %zu\n", r->n_instances);
	for (size_t i = 0; i < r->n_instances; i++) {
		const Openum__InstanceStatus *in = r->instances[i];

		fprintf(f, "  Instance         %s\n", in->instance_id);
		fprintf(f, "  Pid              %u\n", in->pid);
		fprintf(f, "  Endpoints        ");
		text_endpoints(f, in->endpoints, in->n_endpoints);
		fprintf(f, "  MaxCallsAllowed  %u\n", in->max_calls_allowed);
		fprintf(f, "  ActiveCalls      %u\n", in->active_calls);
		fprintf(f, "  Accepting        %s\n",
			in->accepting ? "True" : "False (draining)");
		fprintf(f, "  CallsRouted      %llu\n",
			(unsigned long long)in->calls_routed);
		fprintf(f, "  RedirectsResent  %llu\n",
			(unsigned long long)in->redirects_resent);
		fprintf(f, "  AckTimeouts      %llu\n",
			(unsigned long long)in->ack_timeouts);
		if (in->passed_over_ms)
			fprintf(f, "  PassedOver       %.1f s more (an ack timed out; other "
				   "instances first)\n", in->passed_over_ms / 1000.0);
		if (in->fqdn && *in->fqdn)
			fprintf(f, "  Fqdn             %s\n", in->fqdn);
		if (i + 1 < r->n_instances)
			fputc('\n', f);
	}
}

/* ---- voice messages ------------------------------------------------------ */

#define VM_COLS 7

/* Text safe for a table cell: control characters (a caller's display name
 * comes from the network) become '?'. */
static void cell_clean(char *s)
{
	for (unsigned char *p = (unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
	}
}

static void vm_cells(const struct vm_message *m, char cell[VM_COLS][320])
{
	time_t t = (time_t)(m->received_utc_ms / 1000);
	struct tm tm;

	snprintf(cell[0], 320, "%" PRId64, m->id);
	snprintf(cell[1], 320, "%s", m->mailbox);
	if (*m->caller_name && *m->caller_number)
		snprintf(cell[2], 320, "%.200s <%.100s>", m->caller_name,
			 m->caller_number);
	else if (*m->caller_name || *m->caller_number)
		snprintf(cell[2], 320, "%.300s",
			 *m->caller_name ? m->caller_name : m->caller_number);
	else
		snprintf(cell[2], 320, "(unknown)");
	if (localtime_r(&t, &tm))
		strftime(cell[3], 320, "%Y-%m-%d %H:%M:%S", &tm);
	else
		snprintf(cell[3], 320, "?");
	snprintf(cell[4], 320, "%.1f", (double)m->duration_ms / 1000.0);
	snprintf(cell[5], 320, "%s", vmstore_state_name(m->state));
	snprintf(cell[6], 320, "%s", m->recovered ? "True" : "False");
	for (int k = 0; k < VM_COLS; k++)
		cell_clean(cell[k]);
}

static void vm_json(FILE *f, const struct vm_message *m)
{
	time_t t = (time_t)(m->received_utc_ms / 1000);
	struct tm tm;
	char when[64] = "";

	if (gmtime_r(&t, &tm)) {
		size_t o = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S",
				    &tm);

		snprintf(when + o, sizeof when - o, ".%03dZ",
			 (int)(m->received_utc_ms % 1000));
	}
	fprintf(f, "{\"Id\":%" PRId64 ",\"Mailbox\":", m->id);
	ctl_out_json_string(f, m->mailbox);
	fputs(",\"DialPlan\":", f);
	ctl_out_json_string(f, m->dialplan);
	fputs(",\"CallerNumber\":", f);
	ctl_out_json_string(f, m->caller_number);
	fputs(",\"CallerName\":", f);
	ctl_out_json_string(f, m->caller_name);
	fputs(",\"CallId\":", f);
	ctl_out_json_string(f, m->call_id);
	fputs(",\"ReceivedUtc\":", f);
	ctl_out_json_string(f, when);
	fprintf(f, ",\"DurationMs\":%" PRId64 ",\"State\":", m->duration_ms);
	ctl_out_json_string(f, vmstore_state_name(m->state));
	fprintf(f, ",\"Urgent\":%s,\"Recovered\":%s}",
		m->urgent ? "true" : "false", m->recovered ? "true" : "false");
}

/* Prints voice messages: a table (Id, Mailbox, Caller, Received in local
 * time, Duration in seconds, State, Recovered; nothing when there are
 * none) or a JSON array of objects. */
void ctl_out_voicemail(FILE *f, const struct vm_message *m, size_t n,
		       bool json)
{
	static const char *const head[VM_COLS] = {
		"Id", "Mailbox", "Caller", "Received", "Duration", "State",
		"Recovered"};
	char cell[VM_COLS][320];
	size_t w[VM_COLS];

	if (json) {
		fputc('[', f);
		for (size_t i = 0; i < n; i++) {
			if (i)
				fputc(',', f);
			vm_json(f, &m[i]);
		}
		fputs("]\n", f);
		return;
	}
	if (n == 0)
		return;
	for (int k = 0; k < VM_COLS; k++)
		w[k] = strlen(head[k]);
	for (size_t i = 0; i < n; i++) {
		vm_cells(&m[i], cell);
		for (int k = 0; k < VM_COLS; k++) {
			size_t l = strlen(cell[k]);

			if (l > w[k])
				w[k] = l;
		}
	}
	for (int k = 0; k < VM_COLS; k++) {
		if (k + 1 < VM_COLS)
			fprintf(f, "%-*s  ", (int)w[k], head[k]);
		else
			fprintf(f, "%s\n", head[k]);
	}
	for (size_t i = 0; i < n; i++) {
		vm_cells(&m[i], cell);
		for (int k = 0; k < VM_COLS; k++) {
			/* numbers right-aligned */
			bool right = k == 0 || k == 4;

			if (k + 1 < VM_COLS)
				fprintf(f, right ? "%*s  " : "%-*s  ",
					(int)w[k], cell[k]);
			else
				fprintf(f, "%s\n", cell[k]);
		}
	}
}

/* ---- gateway health (get-umipgateway) ------------------------------------ */

static const struct dir_field health_field = {
	.param = "health", .label = "Health", .kind = DIR_KIND_STRING,
	.flags = DIR_FF_SHOW,
	.help = "Up or Down from the UM services' SIP OPTIONS pings",
};
static const struct dir_field lastping_field = {
	.param = "last-ping", .label = "LastPing", .kind = DIR_KIND_STRING,
	.flags = DIR_FF_SHOW,
	.help = "the last ping's answer, the address that answered, when",
};

unsigned long long ctl_out_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (unsigned long long)ts.tv_sec * 1000 +
	       (unsigned long long)ts.tv_nsec / 1000000;
}

static const char *obj_value(const struct ctl_obj *ob, const char *label)
{
	for (size_t i = 0; i < ob->n; i++) {
		if (!strcmp(ob->field[i]->label, label))
			return ob->value[i];
	}
	return NULL;
}

static void add_field(struct ctl_obj *ob, const struct dir_field *f,
		      const char *v)
{
	char *c;

	if (ob->n >= CTL_OUT_MAX_FIELDS || !(c = strdup(v)))
		return;
	ob->field[ob->n] = f;
	ob->value[ob->n++] = c;
}

static unsigned long long ago_s(unsigned long long now, unsigned long long t)
{
	return now > t ? (now - t) / 1000 : 0;
}

void ctl_out_add_health(struct ctl_objs *o, const Openum__StatusReply *st,
			unsigned long long now_ms)
{
	for (size_t i = 0; i < o->n; i++) {
		struct ctl_obj *ob = &o->obj[i];
		const char *name = obj_value(ob, "Name");
		const Openum__GatewayHealth *best = NULL;
		const char *by = NULL;
		char health[16], last[400];

		for (size_t k = 0; st && name && k < st->n_instances; k++) {
			const Openum__InstanceStatus *in = st->instances[k];

			for (size_t j = 0; j < in->n_gateways; j++) {
				const Openum__GatewayHealth *h = in->gateways[j];

				if (!h->gateway || strcasecmp(h->gateway, name))
					continue;
				/* The most recent ping of any instance. */
				if (!best || h->checked_unix_ms > best->checked_unix_ms) {
					best = h;
					by = in->instance_id;
				}
			}
		}
		if (!st) {
			snprintf(health, sizeof health, "Unknown");
			snprintf(last, sizeof last, "umcallrouter is not running");
		} else if (!best) {
			snprintf(health, sizeof health, "Unknown");
			snprintf(last, sizeof last, "%s",
				 st->n_instances ? "not pinged (not Enabled, or "
						   "just added)"
						 : "no UM service is running");
		} else if (!best->checked) {
			snprintf(health, sizeof health, "Unknown");
			snprintf(last, sizeof last, "first ping under way (%s)", by);
		} else if (best->up) {
			snprintf(health, sizeof health, "Up");
			snprintf(last, sizeof last, "%s from %s, %llu s ago (%s)",
				 best->last_reason, best->address,
				 ago_s(now_ms, best->checked_unix_ms), by);
		} else {
			int n = snprintf(last, sizeof last, "%s, %llu s ago (%s); ",
					 best->last_reason,
					 ago_s(now_ms, best->checked_unix_ms), by);

			snprintf(health, sizeof health, "Down");
			if (n > 0 && (size_t)n < sizeof last) {
				if (best->answered_unix_ms)
					snprintf(last + n, sizeof last - n,
						 "last answered %llu s ago from %s",
						 ago_s(now_ms, best->answered_unix_ms),
						 best->address);
				else
					snprintf(last + n, sizeof last - n,
						 "never answered");
			}
		}
		add_field(ob, &health_field, health);
		add_field(ob, &lastping_field, last);
	}
}
