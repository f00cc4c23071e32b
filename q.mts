import { Firestore } from "@google-cloud/firestore";
const db = new Firestore({ projectId: "image-edit-local" });
for (const status of ["queued", "running", "awaiting_upload"]) {
  const snap = await db.collection("jobs").where("status", "==", status).get();
  for (const d of snap.docs) console.log(status, d.id, d.get("ownerId"), d.get("workerId"), d.get("leaseExpiresAt"), d.get("attempts"), d.get("updatedAt"));
}
process.exit(0);
