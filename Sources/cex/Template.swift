import ArgumentParser
import CampaignApp
import CampaignCore
import Conversation

extension Cex {
    struct Template: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Pitch templates.", subcommands: [Render.self])

        struct Render: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Preview what a call says to one lead: the opening, the pitch steps and the question.",
                discussion: "Example: cex template render templates/solar-assessment.yaml --lead campaigns/demo-leads.csv:4")
            @Argument(help: "The template file.") var template: String
            @Option(help: "FILE:LINE, the line a lead's record starts on.") var lead: String
            @Option(help: "A campaign file whose columns: mapping applies to the lead file.") var campaign: String?

            func validate() throws {
                guard TemplatePreview.leadReference(self.lead) != nil else { throw ValidationError("--lead must be FILE:LINE, LINE 2 or more") }
            }

            func run() async throws {
                let template: PitchTemplate
                do {
                    template = try PitchTemplate.load(path: self.template)
                } catch {
                    throw CommandFailure("\(error)")
                }
                let overrides = try self.campaign.map { try loadCampaignFile($0).columns } ?? [:]
                let (file, line) = TemplatePreview.leadReference(self.lead)!
                let preview: TemplatePreview.Preview
                do {
                    preview = try TemplatePreview.render(template, lead: try TemplatePreview.lead(file: file, line: line, columns: overrides))
                } catch let error as TemplateError {
                    throw CommandFailure("\(file):\(line): \(error.field.map { "{{\($0)}}" } ?? "template"): \(error.message); such a lead is rejected at import", exitCode: CommandFailure.badData)
                } catch {
                    throw CommandFailure("\(error)")
                }
                say("opening: \(preview.opening)")
                for (index, step) in preview.pitch.enumerated() { say("pitch \(index + 1): \(step)") }
                say("question: \(preview.question)")
            }
        }
    }
}
