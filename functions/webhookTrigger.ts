/** Which job event a Firestore document-created CloudEvent is about, from its subject. */

/** `documents/jobs/{jobId}/events/{seq}` (or a full resource name ending so) → the job and seq; undefined for any other document. */
export function jobEventOfDocument(subject: string): { jobId: string; seq: number } | undefined {
  const match = /(?:^|\/)documents\/jobs\/([A-Za-z0-9-]{1,64})\/events\/(\d{1,10})$/.exec(subject);
  if (!match) return undefined;
  return { jobId: match[1] as string, seq: Number(match[2]) };
}
