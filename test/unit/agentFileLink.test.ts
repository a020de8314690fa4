import assert from 'node:assert/strict';
import { agentFileToOpen } from '../../src/extension/runs/agentFileLink';

describe("the Run view's agent-file link", () => {
  const folders = ['/home/ada/trips'];

  it("opens the run's own agent file inside the workspace", () => {
    assert.equal(agentFileToOpen('/home/ada/trips/agents/trip.agent.ts', '/home/ada/trips/agents/trip.agent.ts', folders), '/home/ada/trips/agents/trip.agent.ts');
  });

  it('opens nothing else a webview asks for: another file, a file outside the workspace, a path that climbs out, or a run without a file', () => {
    const recorded = '/home/ada/trips/trip.agent.ts';
    assert.equal(agentFileToOpen('/home/ada/.ssh/id_ed25519', recorded, folders), undefined);
    assert.equal(agentFileToOpen('/etc/passwd', '/etc/passwd', folders), undefined);
    assert.equal(agentFileToOpen('/home/ada/trips/../.bashrc', '/home/ada/trips/../.bashrc', folders), undefined);
    assert.equal(agentFileToOpen('/home/ada/tripsx/a.agent.ts', '/home/ada/tripsx/a.agent.ts', folders), undefined);
    assert.equal(agentFileToOpen('trip.agent.ts', 'trip.agent.ts', folders), undefined);
    assert.equal(agentFileToOpen(recorded, null, folders), undefined);
    assert.equal(agentFileToOpen(recorded, recorded, []), undefined);
  });
});
